"""Measurements shared by the passes: accuracy of torch / ONNX models, interleaved batch-1 latency."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgemap.data.dataset import ImageSet
from edgemap.data.transforms import Normalization, to_nchw_float
from edgemap.runtime.latency import measure_interleaved
from edgemap.train.evaluate import EvalResult, accuracy_report, evaluate


def torch_accuracy(model: nn.Module, data: ImageSet | None, norm: Normalization) -> dict | None:
    """EvalResult.to_dict() of a torch model, None without data."""
    if data is None:
        return None
    model.to(memory_format=torch.contiguous_format)
    return evaluate(model, data, norm).to_dict()


def onnx_logits(path: str | Path, data: ImageSet, norm: Normalization, batch_size: int = 500, threads: int = 0) -> np.ndarray:
    """Logits of an ONNX model on every image, with ONNX Runtime on the CPU."""
    from edgemap.runtime.onnxruntime_backend import OrtSession

    with OrtSession(path, threads=threads, providers=["CPUExecutionProvider"]) as sess:
        batch_size = sess.inputs()[0].shape[0] or batch_size  # a fixed-batch model (a .pt2 saved at batch 1) takes its own
        outs = [sess.run(to_nchw_float(data.images[i:i + batch_size], norm)) for i in range(0, len(data), batch_size)]
    return np.concatenate(outs).astype(np.float32)


def onnx_eval(path: str | Path, data: ImageSet, norm: Normalization, threads: int = 0) -> EvalResult:
    """Accuracy of an ONNX model on `data`."""
    return accuracy_report(onnx_logits(path, data, norm, threads=threads).argmax(1), data)


def onnx_accuracy(path: str | Path, data: ImageSet | None, norm: Normalization) -> dict | None:
    """EvalResult.to_dict() of an ONNX model, None without data."""
    return None if data is None else onnx_eval(path, data, norm).to_dict()


def torch_latency(models: dict[str, nn.Module], input_shape: tuple[int, ...], runs: int = 200,
                  warmup: int = 20) -> dict[str, dict]:
    """Interleaved batch-1 latency of torch models in eager mode (inference_mode, contiguous input)."""
    x = torch.randn(1, *input_shape)
    fns = {}
    for name, m in models.items():
        m = m.eval().to(memory_format=torch.contiguous_format)
        fns[name] = (lambda mm: lambda: _run_torch(mm, x))(m)
    return measure_interleaved(fns, runs=runs, warmup=warmup)


def _run_torch(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(x)


def onnx_latency(paths: dict[str, str | Path], input_shape: tuple[int, ...], runs: int = 200, warmup: int = 20,
                 threads: int = 0) -> dict[str, dict]:
    """Interleaved batch-1 latency of ONNX models with ONNX Runtime on the CPU."""
    from edgemap.runtime.onnxruntime_backend import OrtSession

    x = np.random.default_rng(0).standard_normal((1, *input_shape)).astype(np.float32)
    sessions = {name: OrtSession(p, threads=threads, providers=["CPUExecutionProvider"]) for name, p in paths.items()}
    try:
        fns = {name: (lambda s: lambda: s._run(x))(s) for name, s in sessions.items()}
        return measure_interleaved(fns, runs=runs, warmup=warmup)
    finally:
        for s in sessions.values():
            s.close()


def latency_pair(before: dict, after: dict) -> dict:
    """{"before", "after", "speedup"} from two latency summaries (speedup from the medians)."""
    return {"before": before, "after": after, "speedup": round(before["p50_ms"] / after["p50_ms"], 3)}
