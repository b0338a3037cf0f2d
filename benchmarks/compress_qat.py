"""Quantization-aware training vs static post-training INT8 on the shipped model, full CIFAR-10.

    EDGEMAP_CIFAR10=/work/shared/data/cifar10 .venv/bin/python benchmarks/compress_qat.py --epochs 2
    # -> benchmarks/results/compress_qat.{json,md}; QAT state in runs/compress_bench/qat (resumable)

Both INT8 models are QDQ graphs that ONNX Runtime runs with integer kernels, built with the same quantizer
settings (all layers INT8, per-channel weights, MinMax calibration on the same 512 training images); QAT fine-tunes
BN-folded weights under fake quantization (with the JPEG augmentation share the checkpoint was trained with) and
carries its learned activation ranges into the quantizer. Recorded: top-1 on all 10,000 and on the 1,000 exact
test images for FP32, PTQ and QAT, batch-1 latency of all three in one interleaved run, and the time QAT took.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from compress_common import both, checkpoint_id, cifar, latency_rounds, ort_fn, ratio, write_results

# ---- settings --------------------------------------------------------------------------------
THREADS = 1                   # batch-1 latency threads
TRAIN_THREADS = 2             # QAT uses both cores
ROUNDS, RUNS = int(os.environ.get("ROUNDS", 5)), int(os.environ.get("RUNS", 300))
SAMPLES = 512                 # calibration images from the train split
WORK = Path("runs/compress_bench/qat")  # + /lr<lr>-e<epochs>, one folder per setting
# ------------------------------------------------------------------------------------------------


def main() -> None:
    import torch

    from edgemap.compress.context import PassContext
    from edgemap.compress.measure import onnx_eval
    from edgemap.compress.qat import Qat, qat_checkpoint
    from edgemap.core.evidence import machine_evidence
    from edgemap.models.shipped import shipped_checkpoint

    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--limit", type=int, default=0, help="QAT on the first N training images only (0: all; quick checks)")
    ap.add_argument("--name", default="compress_qat", help="results file stem")
    args = ap.parse_args()
    work = WORK / f"lr{args.lr:g}-e{args.epochs}"
    ckpt = args.checkpoint or shipped_checkpoint()
    train, test = cifar("train"), cifar("test")
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(TRAIN_THREADS)
    tune_set = train.subset(slice(0, args.limit)) if args.limit else train
    ctx = PassContext(train_set=tune_set, eval_set=None, run_dir=work / "state", latency_runs=0, progress=True)
    qat_out, ptq_out, fp32_out = work / "qat_int8.onnx", work / "ptq_int8.onnx", work / "fp32.onnx"
    report = qat_checkpoint(Qat(epochs=args.epochs, lr=args.lr, samples=SAMPLES, compare_ptq=False), ckpt, qat_out, ctx)
    norm = ptq_and_fp32(ckpt, train, ptq_out, fp32_out)
    torch.set_num_threads(THREADS)
    acc = {name: both(onnx_eval(p, test, norm)) for name, p in (("fp32", fp32_out), ("ptq", ptq_out), ("qat", qat_out))}
    lat = latency_rounds({k: ort_fn(p, THREADS) for k, p in (("fp32", fp32_out), ("ptq", ptq_out), ("qat", qat_out))},
                         ROUNDS, RUNS)
    record = {"command": " ".join([".venv/bin/python"] + sys.argv), "config": vars(args) | {"checkpoint": str(ckpt)},
              "accuracy": acc, "qat_wall_s": round(report.wall_s, 1), "qat_history": report.extra["history"],
              "qat_int8_ops": report.extra["int8"], "latency_batch1": lat,
              "speedup_vs_fp32": {"ptq": ratio(lat, "fp32", "ptq"), "qat": ratio(lat, "fp32", "qat")},
              "drop_points": {k: round(acc["fp32"]["top1"] - acc[k]["top1"], 2) for k in ("ptq", "qat")},
              "checkpoint_id": checkpoint_id(ckpt), "evidence": machine_evidence(THREADS)}
    record["claims"] = {"qat_no_worse_than_ptq": record["drop_points"]["qat"] <= record["drop_points"]["ptq"]}
    write_results(args.name, record, summary_lines(record))


def ptq_and_fp32(ckpt: Path, train, ptq_out: Path, fp32_out: Path):  # noqa: ANN001, ANN201 - ImageSet -> Normalization
    """The FP32 export and the static PTQ INT8 model with the quantizer settings the QAT export uses."""
    from edgemap.compress.calibration import calibration_array
    from edgemap.compress.quantize import QuantizeStatic, quantize_static_onnx
    from edgemap.convert.onnx_export import export_onnx
    from edgemap.models.checkpoint import load_checkpoint

    model, info = load_checkpoint(ckpt)
    export_onnx(model, fp32_out, info.input_shape)
    calib = calibration_array(train, SAMPLES, info.normalization, seed=0)
    quantize_static_onnx(fp32_out, ptq_out, calib, QuantizeStatic(samples=SAMPLES))
    return info.normalization


def summary_lines(r: dict) -> list[str]:
    """The markdown summary."""
    a, ev, lat = r["accuracy"], r["evidence"], r["latency_batch1"]["candidates"]
    lines = [f"# QAT ({r['config']['epochs']} epochs, lr {r['config']['lr']}) vs static PTQ INT8, shipped model", "",
             f"`{r['command']}`", "",
             f"CPU: {ev['cpu']}; latency threads {ev['threads']}; load average at the end {ev['load_average']}; "
             f"QAT took {r['qat_wall_s']} s", "",
             "| model | top-1 (10k) | top-1 (exact 1k) | drop (10k) | ORT p50 ms (median [min-max]) |", "|---|---|---|---|---|"]
    for k in ("fp32", "ptq", "qat"):
        drop = "" if k == "fp32" else f"{r['drop_points'][k]:+.2f}"
        lines.append(f"| {k} | {a[k]['top1']} | {a[k]['top1_exact']} | {drop} | {lat[k]['p50_ms_median']} "
                     f"[{lat[k]['p50_ms_min']}-{lat[k]['p50_ms_max']}] |")
    lines += ["", f"Speed-up vs ORT FP32: PTQ x{r['speedup_vs_fp32']['ptq']['median']}, QAT x{r['speedup_vs_fp32']['qat']['median']}.",
              "Claims: " + ", ".join(f"{k}: {v}" for k, v in r["claims"].items())]
    return lines


if __name__ == "__main__":
    main()
