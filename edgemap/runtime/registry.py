"""Backends found by name: `edgemap.runtime.<name>_backend` with a `load(path, threads)` function."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from edgemap.errors import EdgemapError
from edgemap.runtime import formats
from edgemap.runtime.base import Session

# backend name -> (module, pip requirement that provides the engine)
BACKENDS = {
    "onnxruntime": ("edgemap.runtime.onnxruntime_backend", "onnxruntime"),
    "openvino": ("edgemap.runtime.openvino_backend", "openvino"),
    "litert": ("edgemap.runtime.litert_backend", "ai-edge-litert"),
    "torch": ("edgemap.runtime.torch_backend", "torch safetensors"),
}



@dataclass(frozen=True)
class Capabilities:
    """What a backend runs: the artifact format it loads, the precisions it executes, and the INT8 calibration
    methods its quantization path offers. The search space is derived from these (and the device's backends)."""

    format: str
    precisions: tuple[str, ...]
    calibrations: tuple[str, ...] = ()
    engine: str = ""  # the module whose presence means the engine is installed


CAPABILITIES = {
    # INT8 from ONNX Runtime's static quantizer (QDQ), any of its calibrators
    "onnxruntime": Capabilities("onnx", ("fp32", "fp16", "int8"), ("minmax", "entropy", "percentile"), "onnxruntime"),
    # INT8 from the same QDQ model, turned into FakeQuantize layers
    "openvino": Capabilities("openvino", ("fp32", "fp16", "int8"), ("minmax", "entropy", "percentile"), "openvino"),
    # ai-edge-quantizer's static recipe calibrates min/max itself; no FP16 conversion path
    "litert": Capabilities("litert", ("fp32", "int8"), ("minmax",), "ai_edge_litert"),
    "torch": Capabilities("checkpoint", ("fp32",), (), "torch"),
}


def capabilities(backend: str) -> Capabilities:
    """The declared capabilities of `backend`, or a one-line error naming the known ones."""
    if backend not in CAPABILITIES:
        raise EdgemapError(f"unknown backend {backend!r}; known backends: {', '.join(CAPABILITIES)}")
    return CAPABILITIES[backend]


# backend -> the file check that runs before the engine sees the file
_FILE_CHECKS = {
    "onnxruntime": formats.check_onnx_file,
    "openvino": lambda p: formats.check_onnx_file(p) if str(p).endswith(".onnx") else formats.check_openvino_files(p),
    "litert": formats.check_tflite_file,
    "torch": lambda p: formats.require_file(p, "safetensors"),
}


def load_session(backend: str | None, path: str | Path, threads: int = 0) -> Session:
    """Open `path` with the named backend (None: pick by suffix); a missing engine says how to install it."""
    backend = backend or formats.backend_for(path)
    if backend not in BACKENDS:
        raise EdgemapError(f"unknown backend {backend!r}; known backends: {', '.join(BACKENDS)}")
    if threads < 0:
        raise EdgemapError(f"threads must be >= 0 (0: the engine's default), got {threads}")
    _FILE_CHECKS[backend](path)
    module_name, requirement = BACKENDS[backend]
    try:
        module = importlib.import_module(module_name)
        return module.load(path, threads)
    except ModuleNotFoundError as exc:  # engines are imported lazily; either step may find one missing
        raise EdgemapError(f"backend {backend!r} is not installed ({exc.name} missing): pip install {requirement}") from None


def available_backends() -> dict[str, bool]:
    """Which backends' engines import in this environment."""
    return {name: importlib.util.find_spec(c.engine) is not None for name, c in CAPABILITIES.items()}
