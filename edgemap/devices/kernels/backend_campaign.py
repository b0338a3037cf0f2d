"""Measure sampled graphs in OpenVINO or LiteRT on this host: the records behind kernels.backends.

Each sampled configuration (kernels.sampler, the ONNX Runtime campaign's generator) is built FP32
and static QDQ INT8 as ONNX, made into what the runtime runs and timed by the functions the caller
passes (edgemap.commands.backend_files: OpenVINO reads the ONNX file, LiteRT gets a .tflite made as
`edgemap convert --to litert` makes it; timed through edgemap's own session), and its kernels are
read from ONNX Runtime's optimised graph of the ONNX form (what an estimate sees). A configuration
the converter refuses is skipped and counted.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from edgemap.devices.kernels import sampler
from edgemap.devices.kernels.backends import kernel_items

# What a runtime runs and how it is timed come from the layer above (edgemap.commands.backend_files: the
# converters and runtime sessions sit beside this layer, not below it): prepare(pair, prec, dir) -> file to run,
# timer(file, threads) -> seconds of one call.
Prepare = Callable[[dict, str, Path], Path]
Timer = Callable[[Path, int], float]


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


def measure_graph(cfg: dict, idx: int, tmp: Path, precisions: tuple[str, ...], threads: tuple[int, ...],
                  ort_predictor, prepare: Prepare, timer: Timer) -> list[dict]:  # noqa: ANN001 - KernelPredictor
    """One record per precision of one sampled configuration: its kernels and measured seconds per thread count."""
    out = []
    for prec in precisions:
        paths = onnx_pair(sampler.build(cfg if prec == "fp32" else cfg | {"bn": False}), tmp, f"g{idx}", prec == "int8")
        run_file = prepare(paths, prec, tmp)
        times = {str(t): timer(run_file, t) for t in threads}
        out.append({"cfg": idx, "prec": prec, "times": times, "kernels": kernels_by_threads(paths[prec], threads, ort_predictor)})
    return out


def run_backend_campaign(backend: str, graphs: int, ort_predictor, prepare: Prepare, timer: Timer,  # noqa: ANN001
                         threads: tuple[int, ...] = (1, 2), precisions: tuple[str, ...] = ("fp32", "int8"), seed: int = 0,
                         budget_s: float = 900.0, log: Callable[[str], None] = lambda s: None,
                         known: list[dict] | None = None) -> dict:
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
                records += measure_graph(cfg, len(configs) + len(known or []), Path(tmp), precisions, threads,
                                         ort_predictor, prepare, timer)
                configs.append(cfg)
            except Exception as exc:  # noqa: BLE001 - a converter refusing one configuration: skip it, say how many
                refused.append({"cfg": cfg, "why": f"{type(exc).__name__}: {exc}".splitlines()[0][:200]})
            if len(configs) % 20 == 0 and configs:
                log(f"{backend}: {len(configs)} sampled graphs measured, {round(time.monotonic() - start)} s")
    return {"backend": backend, "configs": configs, "graphs": records, "refused": refused, "threads": list(threads),
            "precisions": list(precisions), "elapsed_s": round(time.monotonic() - start, 1), "budget_s": budget_s}
