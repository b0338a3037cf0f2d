"""The same batch-1 benchmark on a second, idle machine, plus ONNX Runtime's GPU providers when it has them.

    python benchmarks/bench_device.py OUT_DIR MODEL [MODEL ...]   # models made by bench_backends.py

Needs only numpy, onnxruntime, onnx (+ torch for a .safetensors model): the lent GPU machine has
no OpenVINO or LiteRT. Writes OUT_DIR/bench_device.{json,md} with the machine evidence. Results from the lent machine:
benchmarks/results/bench_device.{json,md}, made with
    PYTHONPATH=. python3 benchmarks/bench_device.py OUT runs/bench_backends/resnet9s.onnx \
        runs/bench_backends/resnet9s_int8.onnx runs/resnet9s.safetensors
"""

from __future__ import annotations

import sys
from pathlib import Path

THREADS, RUNS, WARMUP, BATCHES = 1, 500, 50, (1, 8, 32)
GPU_FIRST = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def gpu_parity(onnx_path: Path) -> dict:
    """Run the model on the best available ONNX Runtime provider and on the CPU; compare on the shipped sample."""
    from edgemap.convert.parity import compare, run_batches
    from edgemap.data.sample import load_sample
    from edgemap.data.transforms import Normalization, to_nchw_float
    from edgemap.errors import EdgemapError
    from edgemap.runtime.onnxruntime_backend import OrtSession, available_providers

    sample = load_sample()
    x = to_nchw_float(sample.images, Normalization())
    tried = {}
    for providers in (list(GPU_FIRST), ["CUDAExecutionProvider", "CPUExecutionProvider"]):
        try:  # TensorRT's provider needs the TensorRT libraries; fall back to CUDA alone when they are missing
            best = OrtSession(onnx_path, THREADS, providers=[p for p in providers if p in available_providers()])
            break
        except EdgemapError as exc:
            tried[providers[0]] = str(exc)
    else:
        return {"model": str(onnx_path), "errors": tried}
    cpu = OrtSession(onnx_path, THREADS, providers=["CPUExecutionProvider"])
    report = compare(run_batches(cpu.run, x), run_batches(best.run, x), sample.labels)
    return {"model": str(onnx_path), "available": available_providers(), "in_use": best.providers(),
            "errors": tried, **report.to_dict()}


def markdown(record: dict) -> str:
    """A short summary of the JSON record with its evidence."""
    ev = record["bench"]["evidence"]
    lines = [f"# Idle-machine benchmark: batch 1, {THREADS} thread, {record['bench']['runs']} runs, interleaved", "",
             f"Machine: {ev['cpu']} ({', '.join(ev['cpu_flags'])}), {ev['logical_cpus']} logical CPUs, load average "
             f"{ev.get('load_average')}; versions: {ev['versions']}.", "",
             "| model | p50 ms | p90 | p99 | p99/p50 | mean ± std | img/s @" + "/".join(map(str, BATCHES)) + " | cold start s | peak RSS MiB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in record["bench"]["results"]:
        lat, cold = r["latency"], r.get("cold_start", {})
        tput = "/".join(f"{t['images_per_s']:.0f}" if t else "-" for t in r["throughput"].values())
        lines.append(f"| {r['label']} | {lat['p50_ms']:.3f} | {lat['p90_ms']:.3f} | {lat['p99_ms']:.3f} | {r['p99_over_p50']} | "
                     f"{lat['mean_ms']:.3f} ± {lat['std_ms']:.3f} | {tput} | {cold.get('cold_start_s')} | {cold.get('peak_rss_mib')} |")
    lines += ["", "ONNX Runtime GPU providers: " + "; ".join(
        f"{Path(g['model']).name}: available {g.get('available')}, in use {g.get('in_use')}" for g in record["gpu_provider_parity"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Benchmark the given models interleaved, check the GPU provider, write the JSON."""
    from edgemap.core.atomic import write_text
    from compress_common import write_result_json  # the JSON is an export of the results store
    from edgemap.runtime import onnxruntime_backend
    from edgemap.runtime.bench import Candidate, benchmark

    # the CPU comparison: ONNX Runtime on the CPU like PyTorch eager (GPU providers are checked separately)
    onnxruntime_backend.PREFERRED_PROVIDERS = ("CPUExecutionProvider",)
    out, models = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
    record = {"bench": benchmark([Candidate.of(m) for m in models], THREADS, RUNS, WARMUP, BATCHES)}
    onnxruntime_backend.PREFERRED_PROVIDERS = GPU_FIRST
    record["gpu_provider_parity"] = [gpu_parity(m) for m in models if m.suffix == ".onnx"]
    write_result_json(out / "bench_device.json", record)
    write_text(out / "bench_device.md", markdown(record))
    for r in record["bench"]["results"]:
        lat = r["latency"]
        print(f"{r['label']}: p50 {lat['p50_ms']:.3f} ms, p99 {lat['p99_ms']:.3f} ms, p99/p50 {r['p99_over_p50']}")
    for g in record["gpu_provider_parity"]:
        print(g if "in_use" not in g else f"{g['model']}: providers {g['in_use']}, agreement {g['top1_agreement']:.4f}, "
              f"max diff {g['max_abs_diff']:.2e}, errors {g['errors']}")


if __name__ == "__main__":
    main()
