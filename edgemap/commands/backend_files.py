"""What OpenVINO and LiteRT run for a sampled or validation ONNX model, and how a call is timed: the two
functions `edgemap devices calibrate-backend` gives the campaign of edgemap.devices.kernels.backend_campaign
(they use the converters and runtime sessions, which sit beside the devices layer, so they live up here).

- openvino: the ONNX file itself, read and compiled by OpenVINO (the QDQ model runs as INT8);
- litert: a .tflite by litert-torch from the ONNX graph's torch form, INT8 by ai-edge-quantizer's static
  recipe (edgemap.convert.litert_convert, the functions `edgemap convert --to litert` uses).
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import numpy as np

from edgemap.errors import EdgemapError

RUNS, WARMUP = 40, 5
CALIB_INPUTS = 8  # random inputs that calibrate a sampled graph's LiteRT INT8 ranges


def time_session(backend: str, path: Path, threads: int, runs: int = RUNS, warmup: int = WARMUP) -> float:
    """Quiet time (profiling.quiet_time) of `runs` batch-1 calls of edgemap's session for `backend`."""
    from edgemap.devices.kernels.profiling import quiet_time
    from edgemap.runtime.registry import load_session

    with load_session(backend, path, threads) as sess:
        spec = sess.inputs()[0]
        x = np.random.default_rng(0).standard_normal(tuple(1 if d is None else d for d in spec.shape)).astype(np.float32)
        for _ in range(warmup):
            sess.run(x, check_finite=False)
        ts = []
        for _ in range(runs):
            t0 = time.perf_counter()
            sess.run(x, check_finite=False)
            ts.append(time.perf_counter() - t0)
    return quiet_time(ts)


def runtime_file(backend: str, pair: dict[str, Path], prec: str, out_dir: Path) -> Path:
    """The file `backend` runs at `prec` for a model given as its ONNX files (onnx_pair)."""
    if backend == "openvino":
        return pair[prec]
    if backend != "litert":
        raise EdgemapError(f"unknown backend {backend!r}; choose from openvino, litert")
    import onnx

    from edgemap.convert.litert_convert import litert_compatible, tflite_fp32, tflite_int8
    from edgemap.models.onnx_to_torch import onnx_to_torch

    shape = tuple(d.dim_value for d in onnx.load(str(pair["fp32"])).graph.input[0].type.tensor_type.shape.dim)[1:]
    done = out_dir / f"{pair['fp32'].stem}.tflite"  # the FP32 conversion of the same ONNX file, made before
    if done.is_file() and done.stat().st_mtime_ns >= pair["fp32"].stat().st_mtime_ns:
        flat = done.read_bytes()
    else:
        flat = tflite_fp32(litert_compatible(onnx_to_torch(pair["fp32"]))[0], shape)
    if prec == "int8":
        calib = np.random.default_rng(1).standard_normal((CALIB_INPUTS, *shape)).astype(np.float32)
        flat = tflite_int8(flat, calib)
    out = out_dir / f"{pair[prec].stem}.tflite"
    out.write_bytes(flat)
    return out


def campaign_functions(backend: str) -> tuple:
    """(prepare, timer) for backend_campaign.run_backend_campaign."""
    return partial(runtime_file, backend), partial(time_session, backend)
