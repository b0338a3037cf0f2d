"""PyTorch eager backend: runs an edgemap checkpoint (safetensors + JSON sidecar) on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgemap.runtime.base import Session, TensorSpec


class TorchSession(Session):
    """A torch module in eval mode behind the common API."""

    backend = "torch"

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], threads: int = 0) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.model = model.eval()
        self.input_shape = tuple(input_shape)
        self.threads = threads

    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec("input", (None, *self.input_shape), "float32")]

    def outputs(self) -> list[TensorSpec]:
        return [TensorSpec("logits", (None, None), "float32")]

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self.threads and torch.get_num_threads() != self.threads:  # the pool is process-wide: claim our count
            torch.set_num_threads(self.threads)
        with torch.inference_mode():
            return self.model(torch.from_numpy(x)).numpy()


def load(path: str | Path, threads: int = 0) -> TorchSession:
    """Open an edgemap checkpoint for eager inference."""
    from edgemap.models.checkpoint import load_checkpoint

    model, info = load_checkpoint(path)
    return TorchSession(model, info.input_shape, threads)
