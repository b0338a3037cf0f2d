"""`edgemap demo`: the shipped model -> ONNX -> parity check -> ONNX Runtime, with a comparison table.

Offline by construction: it uses only the weights and the 1,000-image sample inside the package.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

PARITY_MIN_AGREEMENT = 99.9  # percent of top-1 predictions that must match between PyTorch and ONNX Runtime


def run_demo(out_dir: Path, runs: int = 300, threads: int = 0) -> dict:
    """Export the shipped model, check parity, measure accuracy and latency; print and return the figures."""
    import torch

    from edgemap.models.onnx_export import export_onnx
    from edgemap.core.evidence import machine_evidence
    from edgemap.data.sample import load_sample
    from edgemap.data.transforms import to_nchw_float
    from edgemap.errors import EdgemapError
    from edgemap.models.checkpoint import load_checkpoint
    from edgemap.models.shipped import shipped_checkpoint
    from edgemap.runtime.latency import measure_interleaved
    from edgemap.runtime.onnxruntime_backend import OrtSession
    from edgemap.train.evaluate import accuracy_report

    console = Console()
    t_start = time.perf_counter()
    if threads:
        torch.set_num_threads(threads)
    ckpt = shipped_checkpoint()
    model, info = load_checkpoint(ckpt)
    sample = load_sample()
    x = to_nchw_float(sample.images, info.normalization)
    onnx_path = export_onnx(model, out_dir / f"{info.architecture}.onnx", info.input_shape)
    session = OrtSession(onnx_path, threads=threads)
    with torch.inference_mode():
        ref = np.concatenate([model(torch.from_numpy(x[i:i + 250])).numpy() for i in range(0, len(x), 250)])
    got = np.concatenate([session.run(x[i:i + 250]) for i in range(0, len(x), 250)])
    max_diff = float(np.abs(ref - got).max())
    agreement = float((ref.argmax(1) == got.argmax(1)).mean() * 100)
    if agreement < PARITY_MIN_AGREEMENT:
        raise EdgemapError(f"ONNX model disagrees with PyTorch on {100 - agreement:.2f}% of top-1 predictions")
    acc_torch = accuracy_report(ref.argmax(1), sample).top1
    acc_ort = accuracy_report(got.argmax(1), sample).top1
    x1 = x[:1].copy()
    with torch.inference_mode():
        lat = measure_interleaved({"torch": lambda: model(torch.from_numpy(x1)), "onnxruntime": lambda: session.run(x1)},
                                  runs=runs, warmup=30)
    figures = {
        "model": info.architecture, "checkpoint": str(ckpt), "onnx": str(onnx_path),
        "test_top1_full_from_sidecar": info.metrics.get("test", {}).get("top1"),
        "test_top1_exact_from_sidecar": info.metrics.get("test", {}).get("top1_exact"),
        "sample_top1": {"torch": acc_torch, "onnxruntime": acc_ort}, "parity": {"max_abs_diff": max_diff,
        "top1_agreement_pct": agreement}, "size_bytes": {"safetensors": ckpt.stat().st_size, "onnx": onnx_path.stat().st_size},
        "latency_batch1": lat, "wall_s": round(time.perf_counter() - t_start, 1),
        "evidence": machine_evidence(threads or None),
    }
    from edgemap.results.builders import demo_runs
    from edgemap.results.record import record_run

    console.print(_table(figures, len(sample)))
    record_run(*demo_runs(figures))
    console.print(f"parity: max |torch - onnxruntime| = {max_diff:.2e}, top-1 agreement {agreement:.2f}% on {len(sample):,} images")
    console.print(f"ONNX model: {onnx_path}   (demo took {figures['wall_s']} s; CPU {figures['evidence']['cpu']}, "
                  f"{figures['evidence'].get('torch_threads')} threads)")
    return figures


def _table(f: dict, n: int) -> Table:
    lat = f["latency_batch1"]
    t = Table(title=f"edgemap demo: shipped {f['model']} on {n:,} exact CIFAR-10 test images, batch 1, one run")
    for col in ("runtime", "top-1 (sample)", "model file", "p50 latency", "p99 latency", "speed-up (p50)"):
        t.add_column(col, justify="left" if col == "runtime" else "right")
    base = lat["torch"]["p50_ms"]
    rows = (("PyTorch eager FP32", "torch", f["size_bytes"]["safetensors"]), ("ONNX Runtime FP32", "onnxruntime", f["size_bytes"]["onnx"]))
    for label, key, size in rows:
        t.add_row(label, f"{f['sample_top1'][key]:.2f}%", f"{size / 1e6:.2f} MB", f"{lat[key]['p50_ms']:.3f} ms",
                  f"{lat[key]['p99_ms']:.3f} ms", f"{base / lat[key]['p50_ms']:.2f}x")
    if f["test_top1_full_from_sidecar"] is not None:
        t.caption = (f"full CIFAR-10 test split (from the checkpoint's record): {f['test_top1_full_from_sidecar']:.2f}% on 10,000, "
                     f"{f['test_top1_exact_from_sidecar']:.2f}% on the 1,000 exact images")
    return t
