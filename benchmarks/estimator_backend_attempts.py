"""Attempts at the OpenVINO / LiteRT whole-call predictors' misses (OpenVINO INT8, LiteRT INT8 and 2 threads), scored
without a new measurement: each attempt is fitted on the stored calibration records (host.backends.json.gz) and
scored against the measured times of a stored validation run (results/estimator_BACKEND[_TAG].json), on the same 40
networks (estimator_families.generate, rebuilt here; no timing, so no lock needed).

Attempts (each a different idea; the shipped line first, which must reproduce the stored predictions):
- shipped: kernels.backends as it was (one non-negative line per precision and thread count over kernel classes);
  it must reproduce the stored predictions. "edgemap now" is kernels.backends.BackendPredictor as it is now.
- dw_split: depthwise and grouped convolutions as separate classes (OpenVINO INT8 over-predicts grouped/depthwise nets).
- no_ort_group: the grouped/depthwise class without ONNX Runtime's predicted time (ONNX Runtime's INT8 depthwise
  kernels are slow; OpenVINO's and XNNPACK's need not be, so ORT's time may carry the wrong shape);
  no_ort_group_int8: the same for INT8 lines only.
- ort_ratio: the 2-thread time is the 1-thread line times ONNX Runtime's predicted 2/1-thread ratio of the whole
  network (the sampled one-to-four-node graphs cannot show how a whole network parallelises).
- dw_split+ort_ratio: both.
- size_parallel: the 2-thread time is the 1-thread line times a parallel speed-up that grows with the graph's work,
  log(t2 / t1) = a + b log(MACs), fitted on the record's sampled graphs (a per-graph-size parallel-efficiency term).
- ort_scaled: no kernel classes at all, a line over ONNX Runtime's predicted whole time and the kernel count (fewer
  coefficients to carry from one-to-four-node graphs to whole networks).

    .venv/bin/python benchmarks/estimator_backend_attempts.py openvino --result estimator_openvino_recal.json
    .venv/bin/python benchmarks/estimator_backend_attempts.py litert --result estimator_litert.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
RESULTS = Path(__file__).resolve().parent / "results"


def classes(dw_split: bool):  # noqa: ANN201 - (key, op) -> class
    from edgemap.devices.kernels.backends import kernel_class

    def cls(key: str, op: str) -> str:
        c = kernel_class(key, op)
        return "conv_dw" if dw_split and c == "conv_group" and ":dw:" in key else c
    return cls


def features(items: list, cls, no_ort_group: bool) -> dict[str, float]:  # noqa: ANN001
    """Per-class totals (kernels, MACs, bytes, ORT seconds) of kernel_items under the class function `cls`."""
    f = {"const": 1.0}
    for key, op, macs, moved, ort_s in items:
        c = cls(key, op)
        for part, v in (("kernels", 1.0), ("macs", macs), ("bytes", moved), ("ort_s", ort_s)):
            if part == "ort_s" and no_ort_group and c in ("conv_group", "conv_dw"):
                continue
            f[f"{c}.{part}"] = f.get(f"{c}.{part}", 0.0) + float(v)
    return f


class Line:
    """One attempt: a line per (precision, threads) fitted as kernels.backends.fit_line fits it."""

    def __init__(self, graphs: list[dict], dw_split: bool = False, no_ort_group: tuple[str, ...] = (),
                 coarse: bool = False) -> None:
        from edgemap.devices.kernels.backends import MIN_GRAPHS, fit_line

        self.cls, self.no_ort = (lambda key, op: "all") if coarse else classes(dw_split), no_ort_group
        by: dict = {}
        for g in graphs:
            for t, s in g["times"].items():
                by.setdefault((g["prec"], int(t)), []).append((self.feats(g["kernels"][t], g["prec"]), s))
        self.cols = sorted({c for pairs in by.values() for f, _ in pairs for c in f})
        self.coefs = {k: fit_line(self._x([f for f, _ in v]), np.array([s for _, s in v])) for k, v in by.items() if len(v) >= MIN_GRAPHS}

    def feats(self, items: list, prec: str) -> dict:
        return features(items, self.cls, prec in self.no_ort)

    def _x(self, fs: list[dict]) -> np.ndarray:
        return np.array([[f.get(c, 0.0) for c in self.cols] for f in fs])

    def predict(self, items: list, prec: str, t: int) -> float:
        return float(max(self._x([self.feats(items, prec)])[0] @ self.coefs[(prec, t)], 0.0))


def network_items(per_family: int, ort_pred) -> dict:  # noqa: ANN001 - KernelPredictor
    """(network, precision, threads) -> kernel_items and ORT's predicted total, as the estimate sees them."""
    from edgemap.devices.kernels.backend_campaign import onnx_pair
    from edgemap.devices.kernels.backends import kernel_items
    from edgemap.devices.kernels.predict import predict_model
    from estimator_families import generate

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, _) in generate(per_family).items():
            pair = onnx_pair(model, Path(tmp), name)
            for prec, path in pair.items():
                for t in (1, 2):
                    kl = predict_model(path, ort_pred, t)
                    out[(name, prec, t)] = (kernel_items(kl.rows), kl.total_s)
    return out


def score(rows: list[dict], pred: dict) -> dict:
    """Per precision/threads: median |error|, within 10 %, Spearman, against the stored measured times."""
    from estimator_kernels import errors

    out = {}
    for p in ("fp32", "int8"):
        for t in (1, 2):
            sel = [r | {"attempt_s": pred[(r["model"], p, t)]} for r in rows if r["precision"] == p and r["threads"] == t]
            if sel:
                e = errors(sel, "attempt_s", "measured_s")
                out[f"{p}/{t}"] = {k: e[k] for k in ("median_abs_err_pct", "within_10pct", "spearman")}
    return out


def size_parallel(graphs: list[dict], items: dict, base: dict) -> dict:
    """`base`'s 1-thread predictions, and its 1-thread prediction times exp(a + b log MACs) at 2 threads, a and b fitted
    per precision on the sampled graphs' measured 2-thread / 1-thread ratios (least squares in log space)."""
    coef = {}
    for prec in ("fp32", "int8"):
        g = [x for x in graphs if x["prec"] == prec and "1" in x["times"] and "2" in x["times"]]
        macs = np.log([max(sum(k[2] for k in x["kernels"]["1"]), 1) for x in g])
        coef[prec] = np.polyfit(macs, np.log([x["times"]["2"] / x["times"]["1"] for x in g]), 1)
    out = {}
    for k, v in base.items():
        if k[2] == 1:
            out[k] = v
        else:
            b, a = coef[k[1]]
            out[k] = base[(k[0], k[1], 1)] * float(np.exp(a + b * np.log(max(sum(i[2] for i in items[k][0]), 1))))
    return out


def attempts(rows: list[dict], graphs: list[dict], items: dict) -> dict:
    """name -> {(network, prec, threads): predicted seconds} for every attempt."""
    lines = {"shipped": Line(graphs), "dw_split": Line(graphs, dw_split=True), "no_ort_group": Line(graphs, no_ort_group=("fp32", "int8")),
             "no_ort_group_int8": Line(graphs, no_ort_group=("int8",)), "ort_scaled": Line(graphs, coarse=True)}
    out = {}
    for name, line in lines.items():
        out[name] = {(r["model"], r["precision"], r["threads"]): line.predict(items[(r["model"], r["precision"], r["threads"])][0],
                                                                               r["precision"], r["threads"]) for r in rows}
    from edgemap.devices.kernels.backends import BackendPredictor, graph_features

    now = BackendPredictor("", graphs)
    out["edgemap now"] = {k: now.predict(graph_features(items[k][0]), k[1], k[2]) for k in out["shipped"]}
    out["size_parallel"] = size_parallel(graphs, items, out["edgemap now"])
    for base in ("shipped", "dw_split"):
        tag = "ort_ratio" if base == "shipped" else "dw_split+ort_ratio"
        out[tag] = {k: v if k[2] == 1 else out[base][(k[0], k[1], 1)] * items[k][1] / items[(k[0], k[1], 1)][1]
                    for k, v in out[base].items()}
    return out


def between_sessions(a: dict, b: dict, name: str) -> list[str]:
    """Markdown lines: per precision/threads, the median (p10-p90) ratio of a's to b's measured time per network, and
    each run's median 2-thread / 1-thread ratio."""
    ka, kb = ({(r["model"], r["precision"], r["threads"]): r["measured_s"] for r in x["rows"]} for x in (a, b))
    lines = ["", f"Between sessions: the same networks measured by `{b['command']}` (load before "
             f"{b['evidence_before'].get('load_average')}):", "",
             "| precision / threads | this run / that run, median (p10-p90) | 2-thread / 1-thread, this run | that run |", "|---|---|---|---|"]
    for p in ("fp32", "int8"):
        nets = sorted({m for m, pp, _ in ka if pp == p and (m, p, 1) in kb and (m, p, 2) in kb and (m, p, 2) in ka})
        for t in (1, 2):
            v = [ka[(m, p, t)] / kb[(m, p, t)] for m in nets]
            ra, rb = ([x[(m, p, 2)] / x[(m, p, 1)] for m in nets] for x in (ka, kb))
            lines.append(f"| {p}/{t} | {np.median(v):.2f} ({np.percentile(v, 10):.2f}-{np.percentile(v, 90):.2f}) | "
                         f"{np.median(ra):.2f} | {np.median(rb):.2f} |")
    return lines


def main() -> None:
    from edgemap.core.atomic import write_text
    from edgemap.core.evidence import machine_evidence
    from edgemap.devices.kernels.backends import read_backend_records
    from edgemap.devices.kernels.device import records_path
    from edgemap.devices.kernels.store import load_predictor

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("backend", choices=("openvino", "litert"))
    ap.add_argument("--result", required=True, help="a stored results/estimator_BACKEND*.json (its measured times)")
    ap.add_argument("--compare", help="another stored validation run of the same networks: how far its measured times are "
                    "from --result's (the runtime's between-session noise, which no predictor fitted once can beat)")
    ap.add_argument("--tag", default="", help="suffix of the result files (e.g. after a recalibration)")
    ap.add_argument("--records", help="a profile folder whose host.backends.json.gz to fit on (default: the shipped one)")
    ap.add_argument("--isa", default="avx512_vnni", help="which stored backend record to fit on (e.g. avx2: OpenVINO under ONEDNN_MAX_CPU_ISA=AVX2)")
    args = ap.parse_args()
    stored = json.loads((RESULTS / args.result).read_text())
    per_family = stored["models"] // stored["families"]
    bfile = Path(args.records) / "host.backends.json.gz" if args.records else records_path("host").with_name("host.backends.json.gz")
    rec = read_backend_records(bfile)[args.isa][args.backend]
    items = network_items(per_family, load_predictor(records_path("host"))[0])  # ORT kernels as the estimate reads them here
    rows = [r for r in stored["rows"] if r["predicted_s"] is not None]
    preds = attempts(rows, rec["graphs"], items)
    drift = max(abs(preds["shipped"][(r["model"], r["precision"], r["threads"])] / r["predicted_s"] - 1) for r in rows)
    table = {name: score(rows, p) for name, p in preds.items()}
    noise = {f"{p}/{t}": round(100 * float(np.median([abs(r["pass_a_s"] / r["pass_b_s"] - 1) for r in rows
                                                       if r["precision"] == p and r["threads"] == t])), 1)
             for p in ("fp32", "int8") for t in (1, 2)}
    cmd = (f".venv/bin/python benchmarks/estimator_backend_attempts.py {args.backend} --result {args.result}"
           + (f" --isa {args.isa}" if args.isa != "avx512_vnni" else "") + (f" --records {args.records}" if args.records else "") + (f" --tag {args.tag}" if args.tag else ""))
    lines = [f"# {args.backend} predictor attempts, scored on the measurements of `{args.result}`", "",
             f"`{cmd}` - no new timing: fitted on the stored {args.backend} record ({args.isa}, {len(rec['configs'])} sampled graphs, "
             f"{rec['date']}, calibration load {rec['evidence'].get('load_average')}); measured times from `{stored['command']}` "
             f"(load before {stored['evidence_before'].get('load_average')}). The shipped line reproduces the stored predictions "
             f"within {100 * drift:.2g} %.", "",
             "| attempt | " + " | ".join(f"{k} median err / within 10 % / Spearman" for k in noise) + " |",
             "|---|" + "---|" * len(noise)]
    for name, t in table.items():
        lines.append(f"| {name} | " + " | ".join(f"{t[k]['median_abs_err_pct']} % / {t[k]['within_10pct']} % / {t[k]['spearman']}"
                                                  if k in t else "-" for k in noise) + " |")
    lines.append("| run-to-run noise of the measurement (median |A/B - 1|) | " + " | ".join(f"{v} %" for v in noise.values()) + " |")
    if args.compare:
        lines += between_sessions(stored, json.loads((RESULTS / args.compare).read_text()), args.compare)
        cmd += f" --compare {args.compare}"
        lines[2] = lines[2].replace(f"`{cmd.split(' --compare')[0]}`", f"`{cmd}`", 1)
    out = RESULTS / (f"estimator_backend_attempts_{Path(args.result).stem}" + (f"_{args.tag}" if args.tag else ""))
    write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    write_text(out.with_suffix(".json"), json.dumps({"command": cmd, "table": table, "noise_pct": noise, "shipped_drift": drift,
                                                      "evidence": machine_evidence()}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
