"""Measured per-kernel times (ONNX Runtime's profiler) and whole-call times of one model.

The profiler writes one `<node>_kernel_time` event per node and run, in microseconds; the
optimised graph is written by the same session, so every event is matched to the node that
produced it. Whole-call times come from a second session without the profiler (its own
bookkeeping would otherwise be counted), timed around `InferenceSession.run` exactly as a
user's call would be.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemap.devices.kernels.ortgraph import DEFAULT_LEVEL, Kernel, read_kernels, session_options
from edgemap.errors import EdgemapError

_NP = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8,
       "tensor(int8)": np.int8, "tensor(int64)": np.int64, "tensor(int32)": np.int32}


@dataclass(frozen=True)
class Profiled:
    """One model measured on this host: its kernels, each kernel's mean time and the whole call."""

    kernels: list[Kernel]
    kernel_s: list[float]      # quiet_time over the recorded runs, per kernel
    call_s: float              # quiet_time of the whole-call times without the profiler
    call_spread: float         # (p75 - p25) / median of the whole-call times
    threads: int


def feeds_for(sess) -> dict[str, np.ndarray]:  # noqa: ANN001 - ort.InferenceSession
    """Random inputs of the session's input shapes (symbolic dimensions set to 1)."""
    rng = np.random.default_rng(0)
    out = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
        dtype = _NP.get(i.type)
        if dtype is None:
            raise EdgemapError(f"input {i.name!r} has type {i.type}, which the kernel profiler cannot feed")
        out[i.name] = (rng.standard_normal(shape) * 10).astype(dtype) if dtype != np.float32 else rng.standard_normal(shape).astype(dtype)
    return out


def quiet_time(values: list[float]) -> float:
    """Mean of the 10th-50th percentile band: on a machine shared with other jobs this estimates the
    time without their interruptions (the upper half is mostly them), and, unlike a quantile, it
    is not stuck on the profiler's whole microseconds."""
    v = np.sort(np.asarray(values, dtype=float))
    lo, hi = int(len(v) * 0.1), max(int(len(v) * 0.5), int(len(v) * 0.1) + 1)
    return float(v[lo:hi].mean())


def profile_model(model: str | Path | bytes, threads: int, runs: int = 30, warmup: int = 5,
                  level: str = DEFAULT_LEVEL) -> Profiled:
    """Per-kernel times and the whole-call time of `model` on `threads` threads here."""
    import onnxruntime as ort

    src = model if isinstance(model, bytes) else str(model)
    with tempfile.TemporaryDirectory() as tmp:
        opts = session_options(threads, level)
        opts.optimized_model_filepath = str(Path(tmp) / "optimised.onnx")
        opts.enable_profiling, opts.profile_file_prefix = True, str(Path(tmp) / "profile")
        sess = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
        feeds = feeds_for(sess)
        for _ in range(warmup + runs):
            sess.run(None, feeds)
        events = json.loads(Path(sess.end_profiling()).read_text())
        kernels, _ = read_kernels(opts.optimized_model_filepath)
    times = match_events(kernels, events, skip=warmup)
    plain = ort.InferenceSession(src, session_options(threads, level), providers=["CPUExecutionProvider"])
    for _ in range(warmup):
        plain.run(None, feeds)
    calls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        plain.run(None, feeds)
        calls.append(time.perf_counter() - t0)
    q25, q50, q75 = np.percentile(calls, [25, 50, 75])
    return Profiled(kernels, [quiet_time(t) * 1e-6 for t in times], quiet_time(calls), float((q75 - q25) / q50), threads)


def match_events(kernels: list[Kernel], events: list[dict], skip: int = 0) -> list[list[float]]:
    """Each kernel's recorded durations (us), its first `skip` runs dropped.

    A named node's events carry its name; an unnamed one's carry '<op>_<index>' with an index
    the saved file does not keep, so those are matched in order among the same op type.
    """
    by_name: dict[str, list[float]] = {}
    order: list[tuple[str, str]] = []
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        name = e["name"][: -len("_kernel_time")]
        if name not in by_name:
            by_name[name] = []
            order.append((name, e.get("args", {}).get("op_name", "")))
        by_name[name].append(float(e["dur"]))
    named = {k.name for k in kernels if k.name}
    queues: dict[str, list[str]] = {}
    for name, op in order:
        if name not in named:
            queues.setdefault(op, []).append(name)
    out = []
    for k in kernels:
        key = k.name if k.name in by_name else (queues.get(k.op.split(".")[-1]) or [None]).pop(0) if not k.name else None
        if key is None or key not in by_name:
            raise EdgemapError(f"no profiler events for node {k.name or k.op}: the optimised graph and the run differ")
        out.append(by_name[key][skip:] or by_name[key])
    return out
