"""The uniform description of a user's model (ModelInfo) and the loaded model (UserModel), whatever file it came from.

torch is imported only when a torch-based model is loaded or asked for, so an ONNX model can be
described and run with numpy + onnxruntime alone.
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


FORMATS = ("onnx", "torch", "pt2")


@dataclass(frozen=True)
class ModelInfo:
    """What every stage needs to know about a model, whatever file it came from.

    input_shape is per sample, without the batch axis, in the model's own layout: (3, 224, 224)
    for NCHW, (224, 224, 3) for NHWC. fixed_batch is the only batch size the model accepts, or
    None when the batch axis is free.
    """

    source: str
    format: str
    input_shape: tuple[int, ...]
    num_classes: int
    layout: str = "nchw"
    input_dtype: str = "float32"
    fixed_batch: int | None = None
    weights: str | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict (stored beside results and in bundles)."""
        return {"source": self.source, "format": self.format, "input_shape": list(self.input_shape),
                "num_classes": self.num_classes, "layout": self.layout, "input_dtype": self.input_dtype,
                "fixed_batch": self.fixed_batch, "weights": self.weights}

    @property
    def channels(self) -> int:
        """Input channels, read from the axis the layout names."""
        return self.input_shape[0] if self.layout == "nchw" else self.input_shape[-1]

    @property
    def image_hw(self) -> tuple[int, int]:
        """Input height and width."""
        return tuple(self.input_shape[1:3] if self.layout == "nchw" else self.input_shape[0:2])  # type: ignore[return-value]


def guess_layout(shape: tuple[int, ...]) -> str:
    """'nhwc' when only the last axis looks like a channel count, else 'nchw'."""
    if len(shape) == 3 and shape[-1] in (1, 3, 4) and shape[0] not in (1, 3, 4):
        return "nhwc"
    return "nchw"


@dataclass
class UserModel:
    """A loaded user model: its description plus what it was loaded from (file, module or program)."""

    info: ModelInfo
    path: Path | None = None  # the .onnx or .pt2 file
    module: Any = field(default=None, repr=False)  # nn.Module for torch / pt2 sources

    def torch_module(self) -> Any:
        """A fresh nn.Module (eval mode) computing this model; ONNX graphs are converted to torch.fx."""
        if self.module is not None:
            return copy.deepcopy(self.module).eval()
        from edgemap.models.onnx_to_torch import onnx_to_torch

        return onnx_to_torch(self.path)

    def export_onnx(self, out: str | Path, opset: int = 18) -> Path:
        """Write an ONNX file of this model at `out` (ONNX sources are copied as they are)."""
        out = Path(out)
        if self.info.format == "onnx":
            if Path(self.path).resolve() != out.resolve():
                from edgemap.core.atomic import atomic_path

                with atomic_path(out) as tmp:
                    shutil.copyfile(self.path, tmp)
            return out
        from edgemap.models.onnx_export import export_onnx

        return export_onnx(self.torch_module(), out, tuple(self.info.input_shape), opset,
                           dynamic_batch=self.info.fixed_batch is None)

    def session(self, threads: int = 0) -> Any:
        """A runtime Session: onnxruntime for ONNX, eager torch for the others."""
        if self.info.format == "onnx":
            from edgemap.runtime.onnxruntime_backend import OrtSession

            return OrtSession(self.path, threads)
        from edgemap.runtime.torch_backend import TorchSession

        return TorchSession(self.module, self.info.input_shape, threads)

    def to_ref(self) -> dict:
        """How to load this model again (for recipes): {'path': ...} or {'entry_point': ..., 'weights': ...}."""
        if self.info.format == "torch":
            return {"entry_point": self.info.source, "weights": self.info.weights,
                    "input_shape": list(self.info.input_shape)}
        return {"path": str(self.path)}
