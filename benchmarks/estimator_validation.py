"""How good is the latency estimator? Predicted vs measured ONNX Runtime latency on this host.

Models: the zoo (resnet9s, writeup_cnn, mobilenetv2, tiny) and channel-pruned ResNet-9s
(width 8 and 12), each as FP32, FP16 and static QDQ INT8 ONNX (random weights: latency does
not depend on them). Batch 1, 1 and 2 threads, interleaved runs (A B C ... A B C) so that the
neighbours' load on the shared cores spreads evenly.

The efficiency factors are fitted on a calibration subset and the error is reported on it
and, separately, on held-out models (other architectures and the pruned widths).

    .venv/bin/python benchmarks/estimator_validation.py [--runs 200] [--write-profile]

--write-profile stores the fitted factors in edgemap/devices/profiles/host.yaml.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

# ---- settings ------------------------------------------------------------------------------
CALIBRATION = ("resnet9s", "mobilenetv2", "tiny")      # fitted on these (all three precisions)
HELD_OUT = ("writeup_cnn", "resnet9_w8", "resnet9_w12")  # never seen by the fit
PRECISIONS = ("fp32", "fp16", "int8")
THREADS = (1, 2)
CALIB_IMAGES = 16                                       # random inputs for static INT8 calibration
RESULTS = Path(__file__).resolve().parent / "results"


def build_models(out: Path) -> dict[str, Path]:
    """Export every (architecture, precision) pair to ONNX under `out`; returns name -> path."""
    import torch

    from edgemap.convert.onnx_export import export_onnx
    from edgemap.models import architectures as arch
    from edgemap.models import zoo

    torch.manual_seed(0)
    nets = {n: zoo.build(n) for n in ("resnet9s", "writeup_cnn", "mobilenetv2", "tiny")}
    nets |= {"resnet9_w8": arch.ResNet9(10, width=8), "resnet9_w12": arch.ResNet9(10, width=12)}
    paths = {}
    for name, net in nets.items():
        fp32 = export_onnx(net, out / f"{name}_fp32.onnx")
        paths[f"{name}_fp32"] = fp32
        paths[f"{name}_fp16"] = to_fp16(fp32, out / f"{name}_fp16.onnx")
        paths[f"{name}_int8"] = to_int8(fp32, out / f"{name}_int8.onnx")
    return paths


def to_fp16(src: Path, dst: Path) -> Path:
    """FP16 weights and activations, FP32 model inputs/outputs (onnxruntime's converter)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx.save(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True), str(dst))
    return dst


def to_int8(src: Path, dst: Path) -> Path:
    """Static QDQ INT8 (per-channel weights, uint8 activations) with onnxruntime.quantization."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    name = onnx.load(str(src)).graph.input[0].name
    feeds = [{name: np.random.default_rng(i).standard_normal((1, 3, 32, 32)).astype(np.float32)} for i in range(CALIB_IMAGES)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(feeds)

        def get_next(self) -> dict | None:
            return next(self.it, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return dst


def measure(paths: dict[str, Path], threads: int, rounds: int, burst: int = 10) -> dict[str, dict]:
    """Batch-1 ONNX Runtime latency of every model on `threads` threads, interleaved in bursts.

    Each round runs every model `burst` times in a row (after 2 unrecorded runs): interleaving
    spreads drift in the neighbours' load over all models, and the bursts keep one session's
    idle spinning worker threads from taxing the next session's run.
    """
    import time

    from edgemap.runtime.latency import summarize as stats
    from edgemap.runtime.onnxruntime_backend import OrtSession

    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    sessions = {n: OrtSession(p, threads=threads, providers=["CPUExecutionProvider"]) for n, p in paths.items()}
    samples: dict[str, list[float]] = {n: [] for n in paths}
    for _ in range(rounds):
        for name, sess in sessions.items():
            for i in range(burst + 2):
                t0 = time.perf_counter()
                sess.run(x, check_finite=False)
                if i >= 2:
                    samples[name].append(time.perf_counter() - t0)
    for s in sessions.values():
        s.close()
    return {n: stats(v) | {"p25_ms": float(np.percentile(v, 25) * 1e3), "p75_ms": float(np.percentile(v, 75) * 1e3)}
            for n, v in samples.items()}


def rel_errors(rows: list[dict], key: str) -> dict:
    """Median / max absolute relative error of `key` predictions over rows."""
    errs = [abs(r[key] - r["measured_ms"]) / r["measured_ms"] for r in rows]
    return {"n": len(errs), "median_pct": round(100 * float(np.median(errs)), 1), "max_pct": round(100 * float(np.max(errs)), 1)}


def evaluate(costs: dict, measured: dict, profile, params) -> list[dict]:  # noqa: ANN001
    """One row per (model, threads): measured median and spread, prediction, and which set it is in."""
    from edgemap.devices import roofline

    unit = profile.unit("cpu")
    bw = profile.memory.bandwidth_bytes_per_s.value
    rows = []
    for threads, stats in measured.items():
        for name, s in stats.items():
            arch = name.rsplit("_", 1)[0]
            rows.append({"model": name, "threads": threads, "set": "calibration" if arch in CALIBRATION else "held-out",
                         "macs": costs[name].macs, "measured_ms": s["p50_ms"], "iqr_ms": [round(s["p25_ms"], 4), round(s["p75_ms"], 4)],
                         "predicted_ms": 1e3 * roofline.graph_time(costs[name], unit, bw, params, threads)})
    return rows


def summarize(rows: list[dict]) -> dict:
    """Errors by set, by threads and by precision."""
    out = {}
    for s in ("calibration", "held-out"):
        sel = [r for r in rows if r["set"] == s]
        out[s] = rel_errors(sel, "predicted_ms") | {f"threads_{t}": rel_errors([r for r in sel if r["threads"] == t], "predicted_ms")
                                                     for t in THREADS}
    out["by_precision_held_out"] = {p: rel_errors([r for r in rows if r["set"] == "held-out" and r["model"].endswith(p)],
                                                  "predicted_ms") for p in PRECISIONS}
    return out


def fitted_calibration(params, n_samples: int):  # noqa: ANN001, ANN201 - roofline.Params -> Calibration
    """The fitted factors as a profile Calibration block, saying what they were fitted on."""
    from edgemap.devices.profile import Calibration

    return Calibration(conv=params.conv, depthwise=params.depthwise, gemm=params.gemm, memory=params.memory,
                       per_layer_s=params.per_layer_s, per_thread_layer_s=params.per_thread_layer_s,
                       parallel_efficiency=params.parallel_efficiency, int8=params.int8, basis="measured",
                       source=f"fitted to {n_samples} measured ONNX Runtime latencies ({', '.join(CALIBRATION)} x "
                              f"{'/'.join(PRECISIONS)} x {'/'.join(map(str, THREADS))} threads) by benchmarks/estimator_validation.py, "
                              f"{datetime.now(timezone.utc):%Y-%m-%d}")


def main() -> None:
    """Build, measure, fit on the calibration set, report errors on both sets, write the results."""
    from edgemap.core.atomic import write_text
    from compress_common import write_result_json  # the JSON, and the same run in the results store
    from edgemap.devices.calibrate import with_calibration, write_profile
    from edgemap.devices.catalogue import SHIPPED_DIR
    from edgemap.devices.profile import load_profile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20, help="rounds of interleaved bursts (10 runs each) per thread count")
    ap.add_argument("--write-profile", action="store_true", help="store the fitted factors in the shipped host profile")
    args = ap.parse_args()
    host_path = SHIPPED_DIR / "host.yaml"
    profile = load_profile(host_path)
    result, params, n_calib = run(profile, args.rounds)
    write_result_json(RESULTS / "estimator_validation.json", result)
    write_text(RESULTS / "estimator_validation.md", markdown(result))
    if args.write_profile:
        write_profile(with_calibration(profile, "cpu", fitted_calibration(params, n_calib)), host_path,
                      "Measured on this machine by: edgemap devices calibrate-host\n"
                      "Efficiency factors (calibration) fitted by: .venv/bin/python benchmarks/estimator_validation.py --write-profile")
    print(json_summary(result))


def run(profile, rounds: int) -> tuple[dict, object, int]:  # noqa: ANN001 - DeviceProfile; returns Params
    """Measure all models, fit on the calibration subset; the result record, fitted params, samples used."""
    from dataclasses import asdict

    from edgemap.core.evidence import machine_evidence
    from edgemap.devices import roofline
    from edgemap.devices.estimate import DEFAULT_PARAMS
    from edgemap.devices.graph import analyse

    with tempfile.TemporaryDirectory() as tmp:
        paths = build_models(Path(tmp))
        costs = {n: analyse(p) for n, p in paths.items()}
        files = {n: p.stat().st_size for n, p in paths.items()}
        load_before = machine_evidence().get("load_average")
        measured = {t: measure(paths, t, rounds) for t in THREADS}
    calib = [(costs[n], t, s["p50_ms"] / 1e3) for t, st in measured.items() for n, s in st.items()
             if n.rsplit("_", 1)[0] in CALIBRATION]
    params = roofline.fit(calib, profile.unit("cpu"), profile.memory.bandwidth_bytes_per_s.value, DEFAULT_PARAMS)
    rows = evaluate(costs, measured, profile, params)
    for r, u in zip(rows, evaluate(costs, measured, profile, DEFAULT_PARAMS)):
        r["uncalibrated_ms"] = u["predicted_ms"]
    result = {"command": " ".join([".venv/bin/python", "benchmarks/estimator_validation.py"] + sys.argv[1:]),
              "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "evidence": machine_evidence() | {"load_average_before": load_before},
              "method": {"batch": 1, "threads": THREADS, "rounds": rounds, "burst": 10, "statistic": "median",
                         "calibration_models": CALIBRATION, "held_out_models": HELD_OUT, "precisions": PRECISIONS},
              "host_profile_peaks": {d: f.value for d, f in profile.unit("cpu").peak_ops.items()},
              "fitted_params": asdict(params), "errors": summarize(rows),
              "errors_uncalibrated": summarize([r | {"predicted_ms": r["uncalibrated_ms"]} for r in rows]),
              "file_bytes": files, "rows": rows}
    return result, params, len(calib)


def markdown(result: dict) -> str:
    """A human-readable table of the result record."""
    e = result["errors"]
    lines = [f"# Latency estimator vs measured ONNX Runtime latency (host)\n", f"Command: `{result['command']}`  ",
             f"When: {result['when']}; CPU: {result['evidence']['cpu']}; load average {result['evidence'].get('load_average')}  ",
             f"Fitted on {', '.join(CALIBRATION)}; held out: {', '.join(HELD_OUT)}. Median of {result['method']['rounds']} x 10 runs.\n",
             "| set | median error | max error | n |", "|---|---|---|---|"]
    lines += [f"| {s} | {e[s]['median_pct']} % | {e[s]['max_pct']} % | {e[s]['n']} |" for s in ("calibration", "held-out")]
    lines += ["", "| model | threads | set | measured ms (IQR) | predicted ms | error |", "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        err = 100 * (r["predicted_ms"] / r["measured_ms"] - 1)
        lines.append(f"| {r['model']} | {r['threads']} | {r['set']} | {r['measured_ms']:.4f} ({r['iqr_ms'][0]:.4f}-{r['iqr_ms'][1]:.4f}) "
                     f"| {r['predicted_ms']:.4f} | {err:+.0f} % |")
    return "\n".join(lines) + "\n"


def json_summary(result: dict) -> str:
    """The headline figures, one line per set."""
    e, u = result["errors"], result["errors_uncalibrated"]
    return "\n".join(f"{s:12s} median error {e[s]['median_pct']:5.1f} % (max {e[s]['max_pct']:5.1f} %, n={e[s]['n']}); "
                     f"uncalibrated {u[s]['median_pct']:5.1f} %" for s in ("calibration", "held-out"))


if __name__ == "__main__":
    main()
