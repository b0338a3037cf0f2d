"""Kernel-level latency of a whole model on this host: every kernel of ONNX Runtime's optimised
graph predicted by its type's regressor, summed, and turned into a whole-call time."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgemap.devices.kernels.features import features, precision, shape_class
from edgemap.devices.kernels.ortgraph import DEFAULT_LEVEL, Kernel, file_kernels


@dataclass
class KernelRow:
    """One kernel's prediction (and, when measured, its profiled time)."""

    name: str
    op: str
    key: str
    precision: str
    macs: int
    bytes_moved: int
    predicted_s: float
    regressor: str
    bound: str = "-"
    measured_s: float | None = None


@dataclass
class KernelLatency:
    """A whole model's predicted latency and its kernels."""

    total_s: float
    kernel_sum_s: float
    threads: int
    rows: list[KernelRow]
    warnings: list[str] = field(default_factory=list)


def predict_kernels(kernels: list[Kernel], predictor, threads: int) -> KernelLatency:  # noqa: ANN001 - KernelPredictor
    """Predict already-read kernels on `threads` threads."""
    feats = [features(k, threads) for k in kernels]
    items = [(shape_class(k), precision(k), f) for k, f in zip(kernels, feats)]
    times = predictor.kernel_times(items, threads)
    rows = [KernelRow(k.name or k.op, k.op, key, prec, int(f["macs"]), int(f["in_bytes"] + f["w_bytes"] + f["out_bytes"]), t, src)
            for k, (key, prec, f), (t, src) in zip(kernels, items, times)]
    ksum = sum(r.predicted_s for r in rows)
    unsampled = sorted({r.key for r in rows if r.regressor != r.key})
    warn = [f"kernel type(s) never sampled, predicted by a model of all kernels of their precision: {', '.join(unsampled)}"] if unsampled else []
    prec = "int8" if any(r.precision == "int8" for r in rows) else "fp16" if any(r.precision == "fp16" for r in rows) else "fp32"
    return KernelLatency(predictor.call_time(ksum, len(rows), threads, prec), ksum, threads, rows, warn)


def predict_model(model: str | Path, predictor, threads: int, level: str = DEFAULT_LEVEL) -> KernelLatency:  # noqa: ANN001
    """Predict `model` as ONNX Runtime runs it here on `threads` threads."""
    kernels, warnings = file_kernels(model, threads, level)
    out = predict_kernels(kernels, predictor, threads)
    out.warnings = warnings + out.warnings
    return out
