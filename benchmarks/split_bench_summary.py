"""The claims of issue 21 computed over split_bench's measured cases (kept apart from the measuring script), and
the merge of several runs' records into one (each model is its own run, so that no run exceeds ~15 minutes).

    .venv/bin/python benchmarks/split_bench_summary.py split_bench_resnet9s split_bench_user ... --out split_bench
    # reads benchmarks/results/<name>.json, writes benchmarks/results/<out>.{json,md}
"""

from __future__ import annotations

import statistics


def _case(r: dict) -> str:
    return f"{r['model']} {r['bandwidth_mbps']:g} Mbps {r['rtt_ms']:g} ms"


def _tie(r: dict) -> bool:
    """The choice's measured median lies within the measured fastest's spread (at or below the upper quartile of
    its timed requests): the two cannot be told apart on this machine with this many requests."""
    runs = r["measured"][r["fastest"]]["runs_ms"]
    return r["choice_ms"] is not None and len(runs) >= 4 and r["choice_ms"] <= statistics.quantiles(runs, n=4)[2]


def _best_end(r: dict) -> float | None:
    """The measured median of the better of all-on-device and the best all-on-server option (finalists)."""
    ends = [v["median_ms"] for k, v in r["measured"].items()
            if (k == "device" or k.startswith("input/")) and v["median_ms"] and v.get("finalist", True)]
    return min(ends) if ends else None


def _errors(rows: list[dict], finalists_only: bool) -> dict:
    errs, base = [], []
    for r in rows:
        for v in r["measured"].values():
            if v["median_ms"] and (v.get("finalist", True) or not finalists_only):
                errs.append(abs(v["predicted_ms"] - v["median_ms"]) / v["median_ms"])
                base.append(abs(v["flops_baseline_ms"] - v["median_ms"]) / v["median_ms"])
    return {"options": len(errs), "mean_abs_error": statistics.mean(errs), "median_abs_error": statistics.median(errs),
            "flops_baseline_mean_abs_error": statistics.mean(base)}


def summarize(rows: list[dict]) -> dict:
    """Planner's choice vs measured fastest (strict, tie-aware, within 10 %), vs the better end (> 5 % slower),
    and predicted vs measured latency over the finalists (1 + FINAL requests) and over every measured option."""
    n = len(rows)
    same = [r for r in rows if r["choice"] == r["fastest"]]
    ties = [r for r in rows if r["choice"] != r["fastest"] and _tie(r)]
    within = [r for r in rows if r["choice_ms"] is not None and r["choice_ms"] <= 1.10 * r["fastest_ms"]]
    worse = [r for r in rows if r["choice_ms"] is not None and _best_end(r) and r["choice_ms"] > 1.05 * _best_end(r)]
    fin, every = _errors(rows, True), _errors(rows, False)
    return {"cases": n, "options_run": sum(len(r["measured"]) for r in rows),
            "requests": sum(len(v["runs_ms"]) for r in rows for v in r["measured"].values()),
            "choice_is_measured_fastest": len(same) / n, "choice_within_10pct": len(within) / n,
            "choice_is_fastest_or_tie": (len(same) + len(ties)) / n,
            "ties": [f"{_case(r)}: {r['choice']} vs {r['fastest']}" for r in ties],
            "misses": [f"{_case(r)}: {r['choice']} {r['choice_ms'] or float('nan'):.2f} vs {r['fastest']} {r['fastest_ms']:.2f}"
                       for r in rows if r["choice"] != r["fastest"] and not _tie(r)],
            "cases_choice_slower_than_best_end_by_5pct": [_case(r) for r in worse],
            "measured_options": fin["options"], "prediction_mean_abs_error": fin["mean_abs_error"],
            "prediction_median_abs_error": fin["median_abs_error"],
            "flops_baseline_mean_abs_error": fin["flops_baseline_mean_abs_error"], "every_option_errors": every,
            "by_load": by_load(rows)}


def by_load(rows: list[dict], quiet: float = 2.0) -> dict | None:
    """The strict figure over the cases measured while the machine was quiet (1-minute load average below `quiet`
    before and after the case) and over the others: how much the other work on the shared machine costs it."""
    loads = [r["load_average"] for r in rows if "load_average" in r]
    if not loads:
        return None
    out = {"quiet_below": quiet, "median_load": statistics.median(max(v.values()) for v in loads)}
    for name, keep in (("quiet", True), ("busy", False)):
        sel = [r for r in rows if "load_average" in r and (max(r["load_average"].values()) < quiet) == keep]
        out[name] = {"cases": len(sel), "choice_is_measured_fastest":
                     sum(r["choice"] == r["fastest"] for r in sel) / len(sel) if sel else None}
    return out


def residuals(rows: list[dict]) -> dict:
    """Per encoding (raw, png, jpeg, ..., fp32, int8-zstd, device): mean measured - predicted ms over the finalists,
    in total and per part - the client's encode, the server's time (decode + compute), the network (the rest)."""
    acc: dict[str, dict[str, list]] = {}
    for r in rows:
        for label, v in r["measured"].items():
            if not (v["median_ms"] and v.get("finalist", True) and v.get("predicted_parts_ms")):
                continue
            kind = "device" if label == "device" else label.split("/")[1].split("-q")[0]
            p, m = v["predicted_parts_ms"], v["parts_ms"]
            d = acc.setdefault(kind, {"total": [], "encode": [], "server": [], "network": []})
            d["total"].append(v["median_ms"] - v["predicted_ms"])
            if kind != "device":
                d["encode"].append(m["encode"] - p["encode"])
                d["server"].append(m["server"] - p["server"] - p["decode"])
                d["network"].append(m["network"] - p["network"])
    return {k: {part: round(statistics.mean(x), 3) if x else None for part, x in d.items()} | {"n": len(d["total"])}
            for k, d in sorted(acc.items())}


def split_vs_input(rows: list[dict]) -> list[dict]:
    """Per case: the best measured split option vs the best measured all-on-server (input) option, same budget."""
    out = []
    for r in rows:
        m = {k: v for k, v in r["measured"].items() if v["median_ms"] and v.get("finalist", True)}
        splits = {k: v["median_ms"] for k, v in m.items() if k.startswith("c")}
        inputs = {k: v["median_ms"] for k, v in m.items() if k.startswith("input/")}
        if splits and inputs:
            s, i = min(splits, key=splits.get), min(inputs, key=inputs.get)
            out.append({"model": r["model"], "bandwidth_mbps": r["bandwidth_mbps"], "rtt_ms": r["rtt_ms"], "split": s,
                        "split_ms": splits[s], "input": i, "input_ms": inputs[i], "split_wins": splits[s] < inputs[i]})
    return out


def per_model(rows: list[dict]) -> dict:
    """The main figures for each model's cases alone."""
    out = {}
    for model in dict.fromkeys(r["model"] for r in rows):
        s = summarize([r for r in rows if r["model"] == model])
        out[model] = {k: s[k] for k in ("cases", "choice_is_measured_fastest", "choice_is_fastest_or_tie",
                                        "choice_within_10pct", "prediction_mean_abs_error", "flops_baseline_mean_abs_error")}
        out[model]["slower_than_best_end_by_5pct"] = len(s["cases_choice_slower_than_best_end_by_5pct"])
        out[model]["median_load"] = (s["by_load"] or {}).get("median_load")
    return out


def complete(rec: dict) -> dict:
    """The record with its summary, residuals and split-vs-input table (computed from its cases)."""
    rec["summary"] = summarize(rec["cases"])
    rec["summary"]["per_model"] = per_model(rec["cases"])
    rec["residual_ms"] = residuals(rec["cases"])
    rec["split_vs_input"] = split_vs_input(rec["cases"])
    return rec


def merge(records: list[dict], command: str) -> dict:
    """Several runs' records as one (cases, bytes, profiles and overheads side by side; each run's evidence kept)."""
    runs = [run for r in records for run in r.get("runs") or [  # a merged record brings its own runs
        {"command": r["command"], "date": r["date"], "evidence": r["evidence"], "settings": r["settings"]}]]
    out = {"date": max(r["date"] for r in records), "command": command, "runs": runs,
        "settings": records[0]["settings"], "data": records[0]["data"], "cases": [], "bytes": {}, "profiles": {},
        "overhead_ms": {}, "evidence": records[-1]["evidence"]}
    for r in records:
        out["cases"] += r["cases"]
        for key in ("bytes", "profiles", "overhead_ms"):
            out[key].update(r.get(key, {}))
        for key in ("adaptivity", "adaptivity_jitter"):
            if key in r:
                out[key] = r[key]
    return complete(out)


def main() -> None:
    import argparse
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from compress_common import write_result_json
    from split_bench_report import markdown

    from edgemap.core.atomic import write_text

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="result names under benchmarks/results (without .json)")
    ap.add_argument("--out", default="split_bench")
    args = ap.parse_args()
    results = Path("benchmarks/results")
    rec = merge([json.loads((results / f"{n}.json").read_text()) for n in args.runs], " ".join(["python"] + sys.argv))
    write_result_json(results / f"{args.out}.json", rec)
    write_text(results / f"{args.out}.md", markdown(rec))
    print(json.dumps(rec["summary"], indent=1))


if __name__ == "__main__":
    main()
