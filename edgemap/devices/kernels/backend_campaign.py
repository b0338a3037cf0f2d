"""Measure sampled graphs in OpenVINO or LiteRT on this host: the records behind kernels.backends.

Each sampled configuration (kernels.sampler, the ONNX Runtime campaign's generator) is built FP32
and static QDQ INT8 as ONNX, and made into what the runtime runs, the way edgemap makes it:
- openvino: the ONNX file itself, read and compiled by OpenVINO (the QDQ model runs as INT8);
- litert: a .tflite by litert-torch from the ONNX graph's torch form, INT8 by ai-edge-quantizer's
  static recipe (edgemap.convert.litert_convert, the functions `edgemap convert --to litert` uses).
It is then timed through edgemap's own session for that backend (what the search measures), and
its features are read from ONNX Runtime's optimised graph of the ONNX form (what an estimate sees).
A configuration the converter refuses is skipped and counted.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from edgemap.devices.kernels import sampler
from edgemap.devices.kernels.backends import BACKENDS, kernel_items
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
        raise EdgemapError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
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


def onnx_pair(model, out_dir: Path, stem: str, int8: bool = True) -> dict[str, Path]:  # noqa: ANN001 - onnx.ModelProto
    """FP32 and (with `int8`) static QDQ INT8 ONNX files of one model (INT8 as edgemap's quantize pass makes it)."""
    import onnx

    paths = {"fp32": out_dir / f"{stem}_fp32.onnx"}
    onnx.save(model, str(paths["fp32"]))
    if int8:
        paths["int8"] = out_dir / f"{stem}_int8.onnx"
        paths["int8"].write_bytes(sampler.quantize(model))
    return paths


def kernels_by_threads(onnx_path: Path, threads: tuple[int, ...], ort_predictor) -> dict[str, list]:  # noqa: ANN001
    """kernel_items of the model's ONNX Runtime kernels, predicted at each thread count."""
    from edgemap.devices.kernels.predict import predict_model

    return {str(t): kernel_items(predict_model(onnx_path, ort_predictor, t).rows) for t in threads}


def measure_graph(backend: str, cfg: dict, idx: int, tmp: Path, precisions: tuple[str, ...], threads: tuple[int, ...],
                  ort_predictor) -> list[dict]:  # noqa: ANN001 - KernelPredictor
    """One record per precision of one sampled configuration: its kernels and measured seconds per thread count."""
    out = []
    for prec in precisions:
        paths = onnx_pair(sampler.build(cfg if prec == "fp32" else cfg | {"bn": False}), tmp, f"g{idx}", prec == "int8")
        run_file = runtime_file(backend, paths, prec, tmp)
        times = {str(t): time_session(backend, run_file, t) for t in threads}
        out.append({"cfg": idx, "prec": prec, "times": times, "kernels": kernels_by_threads(paths[prec], threads, ort_predictor)})
    return out


def run_backend_campaign(backend: str, graphs: int, ort_predictor, threads: tuple[int, ...] = (1, 2),
                         precisions: tuple[str, ...] = ("fp32", "int8"), seed: int = 0, budget_s: float = 900.0,
                         log: Callable[[str], None] = lambda s: None, known: list[dict] | None = None) -> dict:
    """Measure up to `graphs` sampled configurations (stopping at `budget_s`), none a duplicate of another or of
    `known` (configurations already measured: new ones are numbered after them); the record to store."""
    rng = np.random.default_rng(seed)
    start, configs, records, refused = time.monotonic(), [], [], []
    seen = {sampler.signature(c) for c in known or []}
    with tempfile.TemporaryDirectory() as tmp:
        while len(configs) < graphs and time.monotonic() - start < budget_s:
            cfg = sampler.random_config(rng)
            if sampler.signature(cfg) in seen:
                continue
            seen.add(sampler.signature(cfg))
            try:
                records += measure_graph(backend, cfg, len(configs) + len(known or []), Path(tmp), precisions, threads,
                                         ort_predictor)
                configs.append(cfg)
            except Exception as exc:  # noqa: BLE001 - a converter refusing one configuration: skip it, say how many
                refused.append({"cfg": cfg, "why": f"{type(exc).__name__}: {exc}".splitlines()[0][:200]})
            if len(configs) % 20 == 0 and configs:
                log(f"{backend}: {len(configs)} sampled graphs measured, {round(time.monotonic() - start)} s")
    return {"backend": backend, "configs": configs, "graphs": records, "refused": refused, "threads": list(threads),
            "precisions": list(precisions), "elapsed_s": round(time.monotonic() - start, 1), "budget_s": budget_s}
