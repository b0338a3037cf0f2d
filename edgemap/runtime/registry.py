"""Backends found by name: `edgemap.runtime.<name>_backend` with a `load(path, threads)` function."""

from __future__ import annotations

import importlib
import importlib.util
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
    engines = {"onnxruntime": "onnxruntime", "openvino": "openvino", "litert": "ai_edge_litert", "torch": "torch"}
    found = {}
    for name, mod in engines.items():
        found[name] = importlib.util.find_spec(mod) is not None
    return found
