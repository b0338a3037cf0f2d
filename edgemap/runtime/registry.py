"""Backends found by name: `edgemap.runtime.<name>_backend` with a `load(path, threads)` function."""

from __future__ import annotations

import importlib
from pathlib import Path

from edgemap.errors import EdgemapError
from edgemap.runtime.base import Session

# backend name -> (module, pip requirement that provides the engine)
BACKENDS = {
    "onnxruntime": ("edgemap.runtime.onnxruntime_backend", "onnxruntime"),
    "torch": ("edgemap.runtime.torch_backend", "torch safetensors"),
}


def load_session(backend: str, path: str | Path, threads: int = 0) -> Session:
    """Open `path` with the named backend; a missing engine says how to install it."""
    if backend not in BACKENDS:
        raise EdgemapError(f"unknown backend {backend!r}; known backends: {', '.join(BACKENDS)}")
    module_name, requirement = BACKENDS[backend]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise EdgemapError(f"backend {backend!r} is not installed ({exc.name} missing): pip install {requirement}") from None
    return module.load(path, threads)
