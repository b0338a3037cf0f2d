"""The same batch-1 benchmark on a second, idle machine, plus ONNX Runtime's GPU providers when it has them.

    python benchmarks/bench_device.py OUT_DIR MODEL [MODEL ...]   # models made by bench_backends.py

Needs only numpy, onnxruntime, onnx (+ torch for a .safetensors model): the lent GPU machine has
no OpenVINO or LiteRT. Writes OUT_DIR/bench_device.json with the machine evidence.
"""

from __future__ import annotations

import sys
from pathlib import Path

THREADS, RUNS, WARMUP, BATCHES = 1, 500, 50, (1, 8, 32)


def gpu_parity(onnx_path: Path) -> dict:
    """Run the model on the best available ONNX Runtime provider and on the CPU; compare on the shipped sample."""
    from edgemap.convert.parity import compare, run_batches
    from edgemap.data.sample import load_sample
    from edgemap.data.transforms import Normalization, to_nchw_float
    from edgemap.runtime.onnxruntime_backend import OrtSession, available_providers

    sample = load_sample()
    x = to_nchw_float(sample.images, Normalization())
    best = OrtSession(onnx_path, THREADS)
    cpu = OrtSession(onnx_path, THREADS, providers=["CPUExecutionProvider"])
    report = compare(run_batches(cpu.run, x), run_batches(best.run, x), sample.labels)
    return {"model": str(onnx_path), "available": available_providers(), "in_use": best.providers(), **report.to_dict()}


def main() -> None:
    """Benchmark the given models interleaved, check the GPU provider, write the JSON."""
    from edgemap.core.atomic import write_json
    from edgemap.runtime.bench import Candidate, benchmark

    out, models = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
    record = {"bench": benchmark([Candidate.of(m) for m in models], THREADS, RUNS, WARMUP, BATCHES)}
    record["gpu_provider_parity"] = [gpu_parity(m) for m in models if m.suffix == ".onnx"]
    write_json(out / "bench_device.json", record)
    for r in record["bench"]["results"]:
        lat = r["latency"]
        print(f"{r['label']}: p50 {lat['p50_ms']:.3f} ms, p99 {lat['p99_ms']:.3f} ms, p99/p50 {r['p99_over_p50']}")
    for g in record["gpu_provider_parity"]:
        print(f"{g['model']}: providers {g['in_use']}, agreement {g['top1_agreement']:.4f}, max diff {g['max_abs_diff']:.2e}")


if __name__ == "__main__":
    main()
