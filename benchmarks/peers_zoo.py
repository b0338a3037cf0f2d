"""The shipped resnet9s mapped with pruning against the INT8 a user would otherwise make (issue 22's figure: the mapped
model vs the best peer within 0.5 points of FP32, >= 1.5x faster, median over 5 interleaved rounds).

    flock /work/notes/s3/bench.lock nice -n 5 .venv/bin/python benchmarks/peers_zoo.py [--work /tmp/w22b/map] [--reuse-map]

Step 1: `edgemap map` on the shipped model (MAP_ARGS: --prune-ratios 0,0.25,0.5 with the default fine-tuning budget,
judged on 2,000 held-out training images, never the test split; --compare-peers; the search cut to ONNX Runtime and
LiteRT, FP32/INT8, MinMax, 12 trials so that it fits in ~20 min on the shared 2-core host). --reuse-map skips it and
reads WORK/resnet9s/results.json (the map's own pruning cache makes a rerun cheap).
Step 2: peers_unseen.run_model on resnet9s with the map's folder: the map's choice, its most accurate INT8 and its
fastest trial within 0.5 per ratio, edgemap's plain ORT INT8 and the three peers, each scored on all 10,000 CIFAR-10
test images and the exact 1,000, and timed alone in fresh processes (1 and 2 threads, 5 rounds x 200 runs).
Result: benchmarks/results/peers_zoo{tag}.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

# ---- settings ----------------------------------------------------------------------------------
CIFAR = "/work/shared/data/cifar10"
MAP_ARGS = ["--data", CIFAR, "--train-data", CIFAR, "--prune-ratios", "0,0.25,0.5", "--backends", "onnxruntime,litert",
            "--precisions", "fp32,int8", "--calibrations", "minmax", "--trials", "12", "--compare-peers",
            "--timing-rounds", "5"]
TARGET = 1.5  # the speed-up over the best peer
# -------------------------------------------------------------------------------------------------


def map_args(ratios: str, steps: int | None) -> list[str]:
    """MAP_ARGS with other pruning ratios and, if given, another fine-tuning step budget."""
    args = [ratios if a == "0,0.25,0.5" else a for a in MAP_ARGS]
    return args + (["--finetune-steps", str(steps)] if steps else [])


def run_map(out: Path, args_: list[str]) -> dict:
    """`edgemap map` on the shipped model in its own process: wall time and console tail."""
    args = ["map", *args_, "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "edgemap.cli", *args], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"edgemap map failed after {wall:.0f} s: {proc.stderr.strip()[-800:]}")
    return {"command": "edgemap " + " ".join(args), "wall_s": round(wall, 1),
            "console": (proc.stdout + proc.stderr).strip().splitlines()[-60:]}


def map_digest(summary: dict) -> dict:
    """The map's choice, its best trial per ratio, the fine-tuning record per ratio and its in-map comparison."""
    chosen = summary.get("chosen") or {}
    best: dict[str, dict] = {}
    for t in summary["trials"]:
        if t.get("error"):
            continue
        r = f"{t['candidate']['prune_ratio']:g}"
        row = {"key": t["key"], "accuracy": _r(t["accuracy"]), "accuracy_exact": _r(t.get("accuracy_exact")),
               "drop": round(t["accuracy_drop"], 2), "latency_ms": t.get("latency_ms")}
        if r not in best or t["accuracy"] > best[r]["accuracy"]:
            best[r] = row
    finetune = {r: {k: (v or {}).get(k) for k in ("budget_used", "given_up", "optimizer", "lr", "judged_on",
                                                  "decision", "macs", "pruning")}
                for r, v in (summary.get("finetune") or {}).items()}
    comparison = {k: {f: v.get(f) for f in ("backend", "threads", "p50_ms", "spread_ms", "speedup_vs_chosen",
                                            "speedup_range", "verdict")}
                  for k, v in (summary.get("comparison") or {}).items() if isinstance(v, dict)}
    return {"baseline_accuracy": _r(summary.get("baseline_accuracy")), "chosen": chosen.get("key"),
            "chosen_accuracy": _r(chosen.get("accuracy")), "chosen_accuracy_exact": _r(chosen.get("accuracy_exact")),
            "chosen_drop": None if chosen.get("accuracy_drop") is None else round(chosen["accuracy_drop"], 2),
            "best_per_ratio": best, "finetune": finetune, "comparison": comparison, "map_wall_s": summary.get("wall_s")}


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def in_map_lines(comparison: dict) -> list[str]:
    """The map's own --compare-peers timing (5 alternating rounds, fresh processes), one table row per reference."""
    lines = ["The map's own timing (`comparison` in its results.json; x = reference time / chosen time):", "",
             "| row | backend | threads | p50 ms (range) | chosen is x (range) | verdict |", "|---|---|---|---|---|---|"]
    for k, v in comparison.items():
        lo, hi = v["spread_ms"]
        s = v.get("speedup_range") or [0, 0]
        lines.append(f"| {k} | {v['backend']} | {v['threads']} | {v['p50_ms']:.3f} ({lo:.3f}-{hi:.3f}) | "
                     f"x{v['speedup_vs_chosen']:.2f} (x{s[0]:.2f}-{s[1]:.2f}) | {v['verdict']} |")
    return lines + [""]


def verdict(report: dict) -> dict:
    """The figure: the map's choice against the best peer (met when within max_drop, >= TARGET and outside the
    noise); also the fastest edgemap row within max_drop, which the map may have ranked level with its choice."""
    within = [r for r in report["rows"] if r["kind"] == "edgemap" and r["drop"] <= report["max_drop"]
              and "vs_best_peer" in r]
    chosen = next((r for r in report["rows"] if r["name"].startswith("map_chosen")), None)
    out: dict = {"met": False}
    if chosen is None or "vs_best_peer" not in chosen:
        out["reason"] = "the map chose no model (or no peer was built)"
    else:
        vs = chosen["vs_best_peer"]
        out.update(row=chosen["name"], speedup=vs["speedup"], timing_verdict=vs["verdict"], line=vs["line"],
                   drop=chosen["drop"], met=chosen["drop"] <= report["max_drop"] and vs["speedup"] >= TARGET
                   and vs["verdict"] == "faster")
    if within:
        top = max(within, key=lambda r: r["vs_best_peer"]["speedup"])
        out["fastest_within"] = {"row": top["name"], "speedup": top["vs_best_peer"]["speedup"],
                                 "line": top["vs_best_peer"]["line"], "drop": top["drop"]}
    return out


def markdown(record: dict) -> str:
    """The map's digest, the peers table (peers_unseen's), the verdict and the evidence."""
    from peers_unseen import markdown as peers_markdown

    m, v = record["map"], record["verdict"]
    lines = ["# The shipped resnet9s, mapped with pruning, vs the INT8 a user would otherwise make\n",
             f"`{record['command']}`\n", f"Map: `{m.get('command', 'see the JSON')}`; wall time "
             f"{m.get('wall_s', '-')} s (the map's own figure: {m['map_wall_s']} s). FP32 {m['baseline_accuracy']} %; "
             f"chosen **{m['chosen']}** {m['chosen_accuracy']} % (drop {m['chosen_drop']}; exact 1,000: "
             f"{m['chosen_accuracy_exact']} %).\n", "| ratio | most accurate trial | top-1 | drop | exact 1,000 | "
             "fine-tuning | judged on, decision |", "|---|---|---|---|---|---|---|"]
    for r, b in sorted(m["best_per_ratio"].items(), key=lambda kv: float(kv[0])):
        ft = m["finetune"].get(r) or {}
        d = ft.get("decision") or {}
        lines.append(f"| {r} | {b['key']} | {b['accuracy']:.2f} | {b['drop']:.2f} | {b['accuracy_exact']} | "
                     f"{ft.get('budget_used') or ''}{'; given up: ' + ft['given_up'] if ft.get('given_up') else ''} | "
                     f"{ft.get('judged_on') or ''}{': ' + str(d.get('text', '')) if d else ''} |")
    lines += ["", *in_map_lines(m["comparison"])]
    body = peers_markdown([record["report"]], record["evidence"], record["command"]).split("\n", 3)[-1]
    lines += ["", body, "", f"**Figure (the map's choice): {'met' if v['met'] else 'not met'}.** "
              + (v.get("line") or v.get("reason", ""))]
    if v.get("fastest_within") and v["fastest_within"]["row"] != v.get("row"):
        lines.append(f"\nFastest edgemap row within {record['report']['max_drop']} of FP32: {v['fastest_within']['line']}")
    return "\n".join(lines) + "\n"


def pooled(tags: list[str]) -> list[str]:
    """Every round of several runs' isolated timing pooled per file (by sha256) and thread count: the median of all
    round medians, each file against the best peer of the first run (same file in every run), at 1 and 2 threads."""
    import hashlib
    import statistics

    rounds: dict[tuple[str, int], list[float]] = {}
    names: dict[str, str] = {}
    for tag in tags:
        rep = json.loads((ROOT / "benchmarks" / "results" / f"peers_zoo{tag}.json").read_text())["report"]
        paths = {r["name"]: r["path"] for r in rep["rows"]}
        for t in rep["timing"]["timings"]:
            digest = hashlib.sha256(Path(paths[t["name"]]).read_bytes()).hexdigest()[:12]
            names.setdefault(digest, t["name"])
            rounds.setdefault((digest, t["threads"]), []).extend(t["round_ms"])
    first = json.loads((ROOT / "benchmarks" / "results" / f"peers_zoo{tags[0]}.json").read_text())["report"]
    peer = next(r for r in first["rows"] if r["name"] == first["best_peer"])
    peer_sha = hashlib.sha256(Path(peer["path"]).read_bytes()).hexdigest()[:12]
    lines = [f"Pooled over runs {', '.join(t or '(first)' for t in tags)}: median of all round medians (ms), "
             f"x = {peer['name']} / row at the same thread count, and best thread against best thread.", "",
             "| file (first name) | sha256 | rounds | 1 thread ms | 2 threads ms | x at 1 | x at 2 | x best/best |",
             "|---|---|---|---|---|---|---|---|"]
    med = {k: statistics.median(v) for k, v in rounds.items()}
    best_peer = min(med[(peer_sha, 1)], med[(peer_sha, 2)])
    for sha, name in names.items():
        m1, m2 = med[(sha, 1)], med[(sha, 2)]
        lines.append(f"| {name} | {sha} | {len(rounds[(sha, 1)])} | {m1:.3f} | {m2:.3f} | x{med[(peer_sha, 1)] / m1:.2f} | "
                     f"x{med[(peer_sha, 2)] / m2:.2f} | x{best_peer / min(m1, m2):.2f} |")
    return lines


def main() -> None:
    """Map (or reuse the map), time its choices against the peers, write the results."""
    from compress_common import write_result_json
    from edgemap.core.atomic import write_text
    from edgemap.core.evidence import machine_evidence
    from peers_unseen import run_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/w22b/map"), help="the map's folder is WORK/resnet9s")
    ap.add_argument("--reuse-map", action="store_true", help="read WORK/resnet9s/results.json instead of mapping")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "unseen", help="peers_unseen's folder")
    ap.add_argument("--tag", default="")
    ap.add_argument("--prune-ratios", default="0,0.25,0.5")
    ap.add_argument("--finetune-steps", type=int, default=None, help="default: the map's own budget")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite the .md (and the map digest) from the stored .json and WORK's results.json, no measuring")
    ap.add_argument("--pool", default=None, help="comma-separated tags of earlier runs: pool their rounds, no measuring")
    args = ap.parse_args()
    if args.pool is not None:
        lines = pooled(args.pool.split(","))
        write_text(ROOT / "benchmarks" / "results" / "peers_zoo_pooled.md", "\n".join(lines) + "\n")
        print("\n".join(lines))
        return
    stem = ROOT / "benchmarks" / "results" / f"peers_zoo{args.tag}"
    if args.render_only:
        record = json.loads(stem.with_suffix(".json").read_text())
        record["map"] = {**record["map"], **map_digest(json.loads((args.work / "resnet9s" / "results.json").read_text()))}
        record["verdict"] = verdict(record["report"])
        write_result_json(stem.with_suffix(".json"), record)
        write_text(stem.with_suffix(".md"), markdown(record))
        return
    map_run = {} if args.reuse_map else run_map(args.work / "resnet9s", map_args(args.prune_ratios, args.finetune_steps))
    digest = {**map_run, **map_digest(json.loads((args.work / "resnet9s" / "results.json").read_text()))}
    report = run_model("resnet9s", args.out, (), map_dir=args.work)
    command = (f"flock /work/notes/s3/bench.lock nice -n 5 .venv/bin/python benchmarks/peers_zoo.py --work {args.work}"
               + (" --reuse-map" if args.reuse_map else "") + (f" --tag {args.tag}" if args.tag else "")
               + (f" --prune-ratios {args.prune_ratios}" if args.prune_ratios != "0,0.25,0.5" else "")
               + (f" --finetune-steps {args.finetune_steps}" if args.finetune_steps else ""))
    record = {"command": command, "map": digest, "report": report, "verdict": verdict(report),
              "evidence": machine_evidence()}
    write_result_json(stem.with_suffix(".json"), record)
    write_text(stem.with_suffix(".md"), markdown(record))
    print(markdown(record))


if __name__ == "__main__":
    main()
