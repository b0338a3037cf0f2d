"""A whole-model latency predictor for OpenVINO (CPU plugin, FP32, batch 1), validated like the
ONNX Runtime kernel-level one - a simpler model, fitted on OpenVINO's whole calls:

    call = c0 + sum over the graph's kernels (a_class + b_class * MACs + c_class * bytes moved)

per thread count, classes dense conv / depthwise-grouped conv / fully connected / other, all
coefficients >= 0 except c0, fitted for relative error on `--graphs` sampled one-to-four-node graphs
(edgemap/devices/kernels/sampler.py, the kernel campaign's generator); the kernels and their
sizes are ONNX Runtime's optimised graph's (a proxy of OpenVINO's fused layers). Validated on the
40 generated networks of estimator_families.py (never fitted on), measured in 2 passes.
OpenVINO's own per-layer PERF_COUNT times are not used: get_profiling_info() reports the last
request only, and its layer sum was 0.6-2.4x the call in a probe here (noisy single runs).

    nice -n 5 .venv/bin/python benchmarks/estimator_openvino.py [--graphs 160] [--per-family 4] [--runs 40] [--tag NAME]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
RESULTS = Path(__file__).resolve().parent / "results"
THREADS = (1, 2)
CLASSES = ("conv_dense", "conv_group", "fc", "other")


def kernel_class(key: str) -> str:
    """Coarse class of an ONNX Runtime kernel type (features.shape_class)."""
    if ":dense:" in key:
        return "conv_dense"
    if ":dw:" in key or ":grouped:" in key:
        return "conv_group"
    return "fc" if any(op in key for op in ("Gemm", "MatMul")) else "other"


def row_features(path: Path) -> np.ndarray:
    """[1, then per class: kernels, MACs, bytes] of the model's ONNX Runtime kernels."""
    from edgemap.devices.kernels.features import features, shape_class
    from edgemap.devices.kernels.ortgraph import file_kernels

    x = np.zeros(1 + 3 * len(CLASSES))
    x[0] = 1.0
    for k in file_kernels(path, 1)[0]:
        f, i = features(k, 1), 1 + 3 * CLASSES.index(kernel_class(shape_class(k)))
        x[i:i + 3] += (1.0, f["macs"], f["in_bytes"] + f["w_bytes"] + f["out_bytes"])
    return x


def ov_time(path: Path, threads: int, runs: int) -> float:
    """Quiet time (mean of the 10-50th percentile band) of `runs` OpenVINO CPU calls."""
    import openvino as ov

    from edgemap.devices.kernels.profiling import quiet_time

    cm = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
    req = cm.create_infer_request()
    x = np.random.default_rng(0).standard_normal(tuple(cm.input(0).shape)).astype(np.float32)
    for _ in range(5):
        req.infer({0: x})
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        req.infer({0: x})
        ts.append(time.perf_counter() - t0)
    return quiet_time(ts)


def fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative coefficients (c0 included) minimising the squared relative error, columns scaled."""
    from scipy.optimize import nnls

    scale = np.maximum(np.abs(x).max(axis=0), 1e-12)
    coef, _ = nnls((x / scale) / y[:, None], np.ones_like(y))
    return coef / scale


def main() -> None:
    """Calibrate on sampled graphs, validate on the families, write results/estimator_openvino.{json,md}."""
    import tempfile

    import onnx
    import onnxruntime as ort

    from edgemap.core.atomic import write_text
    from compress_common import write_result_json  # the JSON is an export of the results store
    from edgemap.core.evidence import machine_evidence
    from edgemap.devices.kernels.sampler import build, random_config
    from estimator_families import generate
    from estimator_kernels import errors

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graphs", type=int, default=160, help="sampled calibration graphs")
    ap.add_argument("--per-family", type=int, default=4, help="validation networks per family (10 families)")
    ap.add_argument("--runs", type=int, default=40, help="timed calls per model, pass and thread count")
    ap.add_argument("--tag", default="", help="suffix of the result files")
    args = ap.parse_args()
    ort.set_default_logger_severity(3)
    before, t_start = machine_evidence(), time.time()
    rng = np.random.default_rng(23)
    rows, coefs = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        cal = []
        for i in range(args.graphs):
            p = Path(tmp) / f"cal{i}.onnx"
            onnx.save(build(random_config(rng)), str(p))
            cal.append(p)
        val = {}
        for name, (model, _) in generate(args.per_family).items():
            val[name] = Path(tmp) / f"{name}.onnx"
            onnx.save(model, str(val[name]))
        xc = np.array([row_features(p) for p in cal])
        xv = {n: row_features(p) for n, p in val.items()}
        for t in THREADS:
            coefs[t] = fit(xc, np.array([ov_time(p, t, args.runs) for p in cal]))
            passes = [{n: ov_time(p, t, args.runs) for n, p in val.items()} for _ in range(2)]
            for n in val:
                rows.append({"model": n, "family": n.rsplit("_", 1)[0], "threads": t, "predicted_s": float(xv[n] @ coefs[t]),
                             "measured_s": (passes[0][n] + passes[1][n]) / 2, "pass_a_s": passes[0][n], "pass_b_s": passes[1][n]})
    noise = {t: round(100 * float(np.median([abs(r["pass_a_s"] / r["pass_b_s"] - 1) for r in rows if r["threads"] == t])), 1) for t in THREADS}
    table = {t: errors([r for r in rows if r["threads"] == t], "predicted_s", "measured_s") for t in THREADS}
    after = machine_evidence()
    cmd = f"nice -n 5 .venv/bin/python benchmarks/estimator_openvino.py --graphs {args.graphs} --per-family {args.per_family} --runs {args.runs}" + (f" --tag {args.tag}" if args.tag else "")
    stem = "estimator_openvino" + (f"_{args.tag}" if args.tag else "")
    md = [f"# Whole-model OpenVINO (CPU, FP32) latency predictor on {len(rows) // len(THREADS)} unseen networks", "",
          f"`{cmd}` - {after['cpu']} ({', '.join(after['cpu_flags'])}), openvino {after['versions'].get('openvino', '?')}, "
          f"load average before {before['load_average']}, after {after['load_average']} on {after['logical_cpus']} logical CPUs "
          f"(shared: noisy); {round(time.time() - t_start)} s. Fitted on {args.graphs} sampled graphs' whole calls.", "",
          "| threads | n | median abs err | within 10 % | Spearman | max err | run-to-run noise (median |A/B - 1|) |", "|---|---|---|---|---|---|---|"]
    md += [f"| {t} | {e['n']} | {e['median_abs_err_pct']} % | {e['within_10pct']} % | {e['spearman']} | {e['max_abs_err_pct']} % | {noise[t]} % |"
           for t, e in table.items()]
    write_result_json(RESULTS / f"{stem}.json", {"command": cmd, "table": table, "noise_pct": noise, "rows": rows,
                                                     "coefficients": {t: c.tolist() for t, c in coefs.items()}, "classes": CLASSES,
                                                     "evidence_before": before, "evidence_after": after})
    write_text(RESULTS / f"{stem}.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
