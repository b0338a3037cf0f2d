"""Convert the shipped model to every backend, check parity on the 1,000-image sample, and benchmark them.

    .venv/bin/python benchmarks/bench_backends.py            # writes benchmarks/results/bench_backends.{json,md}

Claims checked (each recorded as true/false in the JSON, not asserted):
  - ONNX Runtime INT8 is >= 5x faster than PyTorch eager FP32 at batch 1 (same run, interleaved);
  - FP32 conversions agree with PyTorch on >= 99.9 % of top-1 predictions;
  - INT8 conversions lie within 0.5 accuracy points of FP32;
  - p99 <= 3 x p50 for every backend.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

# ---- settings (one block, as airbench does) -------------------------------------------------
THREADS = 1               # one intra-op thread per engine: the machine has 2 cores shared with other work
RUNS, WARMUP = 300, 30    # timed runs at batch 1, interleaved across the candidates
BATCHES = (1, 8, 32)      # throughput batch sizes
CALIBRATION = 512         # INT8 calibration images, from the CIFAR-10 *train* split when present
WORK = Path("runs/bench_backends")          # converted models (not committed)
RESULTS = Path("benchmarks/results")
# ------------------------------------------------------------------------------------------------


def calibration_images(norm) -> tuple:  # noqa: ANN001 - Normalization
    """Calibration inputs from CIFAR-10 train images (not the evaluation sample) when available."""
    from edgemap.data.transforms import to_nchw_float

    root = os.environ.get("EDGEMAP_CIFAR10") or str(Path(__file__).resolve().parents[2] / "shared/data/cifar10")
    try:
        from edgemap.data.cifar10 import load_cifar10

        train = load_cifar10("train", Path(root))
        idx = __import__("numpy").random.default_rng(0).choice(len(train), CALIBRATION, replace=False)
        return to_nchw_float(train.images[idx], norm), f"{CALIBRATION} CIFAR-10 train images ({root})"
    except Exception:  # no training data here: the shipped sample, which is also the evaluation set
        from edgemap.data.sample import load_sample

        return to_nchw_float(load_sample().images[:CALIBRATION], norm), f"first {CALIBRATION} shipped-sample images"


def onnx_int8(fp32: Path, out: Path, calib) -> str:  # noqa: ANN001 - ndarray
    """QDQ INT8 ONNX from the quantize pass (edgemap.compress), or ORT's quantize_static when it is absent."""
    try:
        from edgemap.compress.quantize import QuantizeStatic, quantize_static_onnx

        quantize_static_onnx(fp32, out, calib, QuantizeStatic(samples=len(calib)))
        return "edgemap.compress.quantize.quantize_static_onnx (QDQ, per-channel, minmax)"
    except ImportError:
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.it = iter(calib[i:i + 1] for i in range(len(calib)))

            def get_next(self):  # noqa: ANN202
                x = next(self.it, None)
                return None if x is None else {"input": x}

        quantize_static(str(fp32), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True)
        return "onnxruntime.quantization.quantize_static (QDQ, per-channel), called directly"


def accuracy_of(path: Path, x, labels, reference) -> dict:  # noqa: ANN001
    """Parity of a model file against the torch logits `reference` on the sample."""
    from edgemap.convert.parity import compare, run_batches
    from edgemap.runtime.registry import load_session

    with load_session(None, path, THREADS) as s:
        return compare(reference, run_batches(s.run, x), labels).to_dict()


def convert_all(ckpt: Path, calib, calib_note: str) -> tuple[dict, dict]:  # noqa: ANN001
    """Every converted model: {label: path} and {label: parity record}."""
    from edgemap.convert.api import convert
    from edgemap.convert.parity import run_batches
    from edgemap.convert.source import open_source, parity_inputs
    from edgemap.errors import EdgemapError

    src = open_source(ckpt)
    x, labels = parity_inputs(src, 1000)
    reference = run_batches(src.reference, x)
    WORK.mkdir(parents=True, exist_ok=True)
    models, parity = {"pytorch eager fp32": ckpt}, {}
    for label, to, prec, name in [("onnxruntime fp32", "onnx", "fp32", "resnet9s.onnx"),
                                  ("openvino fp32", "openvino", "fp32", "resnet9s.xml"),
                                  ("openvino int8 (nncf)", "openvino", "int8", "resnet9s_int8.xml"),
                                  ("litert fp32", "litert", "fp32", "resnet9s.tflite"),
                                  ("litert int8", "litert", "int8", "resnet9s_int8.tflite")]:
        t0 = time.perf_counter()
        try:
            res = convert(src, to, WORK / name, precision=prec, calibration=calib)
        except EdgemapError as exc:  # a refused conversion is a result too: record it, bench the rest
            parity[label] = {"refused": str(exc)}
            print(f"{label}: REFUSED {exc}", file=sys.stderr)
            continue
        models[label], parity[label] = res.path, {**res.parity.to_dict(), "notes": res.notes, "convert_s": round(time.perf_counter() - t0, 1)}
        print(f"{label}: {res.parity.summary()}", file=sys.stderr)
    how = onnx_int8(models["onnxruntime fp32"], WORK / "resnet9s_int8.onnx", calib)
    models["onnxruntime int8"] = WORK / "resnet9s_int8.onnx"
    parity["onnxruntime int8"] = {**accuracy_of(models["onnxruntime int8"], x, labels, reference), "notes": [how]}
    try:  # the same QDQ model read by OpenVINO (its Q/DQ pairs become FakeQuantize)
        qdq_ov = convert(WORK / "resnet9s_int8.onnx", "openvino", WORK / "resnet9s_int8_qdq.xml", precision="int8")
        models["openvino int8 (from QDQ)"] = qdq_ov.path
        parity["openvino int8 (from QDQ)"] = {**accuracy_of(qdq_ov.path, x, labels, reference), "notes": qdq_ov.notes}
    except EdgemapError as exc:
        parity["openvino int8 (from QDQ)"] = {"refused": str(exc)}
    for rec in parity.values():
        rec["calibration"] = calib_note
        rec.pop("tolerance", None)
    return models, parity


def claims(bench: dict, parity: dict) -> dict:
    """The issue's figures, each with its value and whether it holds."""
    label_of = {r["label"]: name for name, r in zip(bench["labels"], bench["results"])}
    p50 = {label_of[r["label"]]: r["latency"]["p50_ms"] for r in bench["results"]}
    speedup = p50["pytorch eager fp32"] / p50["onnxruntime int8"]
    ok = {k: v for k, v in parity.items() if "refused" not in v}
    fp32 = {k: v["top1_agreement"] for k, v in ok.items() if "fp32" in k}
    drop = {k: v["reference_top1"] - v["candidate_top1"] for k, v in ok.items() if "int8" in k}
    spread = {label_of[r["label"]]: r["p99_over_p50"] for r in bench["results"]}
    return {"ort_int8_speedup_vs_torch_fp32": {"value": round(speedup, 2), "holds": speedup >= 5},
            "refused_conversions": sorted(set(parity) - set(ok)),
            "fp32_top1_agreement": {"value": fp32, "holds": all(v >= 0.999 for v in fp32.values())},
            "int8_accuracy_drop_points": {"value": {k: round(v, 2) for k, v in drop.items()},
                                          "holds": all(v <= 0.5 for v in drop.values())},
            "p99_over_p50": {"value": spread, "holds": all(v <= 3 for v in spread.values())},
            "fastest_backend_p50": min(p50, key=p50.get)}


def markdown(record: dict) -> str:
    """A short human summary of the JSON record."""
    ev, c = record["bench"]["evidence"], record["claims"]
    lines = [f"# Backends benchmark: {record['model']} (sha256 {record['model_sha256'][:12]}), batch 1, {THREADS} thread, "
             f"{record['bench']['runs']} runs, interleaved", "",
             f"Machine: {ev['cpu']} ({', '.join(ev['cpu_flags'])}), {ev['logical_cpus']} logical CPUs, load average "
             f"{ev.get('load_average')}; versions: {ev['versions']}.", f"Reproduce: `{record['command']}`", "",
             "| backend | p50 ms | p90 | p99 | mean ± std | img/s @1/8/32 | cold start s | peak RSS MiB | size KiB | top-1 agree | acc % |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in zip(record["bench"]["labels"], record["bench"]["results"]):
        lat, p, cold = r["latency"], record["parity"].get(name, {}), r.get("cold_start", {})
        tput = "/".join(f"{t['images_per_s']:.0f}" if t else "-" for t in r["throughput"].values())
        agree = f"{p['top1_agreement'] * 100:.2f}" if p else "ref"
        acc = f"{p['candidate_top1']:.1f}" if p else f"{record['reference_top1']:.1f}"
        lines.append(f"| {name} | {lat['p50_ms']:.3f} | {lat['p90_ms']:.3f} | {lat['p99_ms']:.3f} | {lat['mean_ms']:.3f} ± "
                     f"{lat['std_ms']:.3f} | {tput} | {cold.get('cold_start_s', '-')} | {cold.get('peak_rss_mib', '-')} | "
                     f"{r['file_bytes'] / 1024:.0f} | {agree} | {acc} |")
    lines += [f"\nRefused by the parity gate: {k}: {v['refused']}" for k, v in record["parity"].items() if "refused" in v]
    lines += ["", f"Parity on {record['parity_inputs']}; INT8 calibration: {record['calibration']}.", "", "Claims:"]
    lines += [f"- {k}: {v}" for k, v in c.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Convert, check parity, benchmark interleaved, and write JSON + markdown with the evidence."""
    import torch

    from edgemap.core.atomic import write_text
    from compress_common import write_result_json  # the JSON, and the same run in the results store
    from edgemap.models.checkpoint import read_info
    from edgemap.models.shipped import shipped_checkpoint
    from edgemap.runtime.bench import Candidate, benchmark

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped model")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    ckpt = args.checkpoint or shipped_checkpoint()
    calib, calib_note = calibration_images(read_info(ckpt).normalization)
    models, parity = convert_all(ckpt, calib, calib_note)
    bench = benchmark([Candidate.of(p) for p in models.values()], THREADS, args.runs, WARMUP, BATCHES)
    bench["labels"] = list(models)
    ref_top1 = parity["onnxruntime fp32"]["reference_top1"]
    record = {"command": " ".join(["python"] + sys.argv), "model": str(ckpt), "reference_top1": ref_top1,
              "model_sha256": hashlib.sha256(ckpt.read_bytes()).hexdigest(),
              "calibration": calib_note,
              "parity_inputs": "shipped sample: 1,000 CIFAR-10 test images", "parity": parity, "bench": bench}
    record["claims"] = claims(bench, parity)
    write_result_json(RESULTS / "bench_backends.json", record)
    write_text(RESULTS / "bench_backends.md", markdown(record))
    print(markdown(record))


if __name__ == "__main__":
    main()
