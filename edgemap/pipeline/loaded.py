"""Every module that registers passes or model sources, imported on demand (heavy: torch, onnxruntime)."""

from __future__ import annotations

import importlib

from edgemap.core import passes

PASS_MODULES = ("edgemap.compress.prune", "edgemap.compress.sparse", "edgemap.compress.quantize",
                "edgemap.compress.qat", "edgemap.compress.distill", "edgemap.pipeline.convert_passes",
                "edgemap.pipeline.user_prune", "edgemap.models.sources.loaders")


def load_all() -> None:
    """Import the modules above (each registers its passes once, on first import)."""
    for name in PASS_MODULES:
        importlib.import_module(name)


passes.set_loader(load_all)
