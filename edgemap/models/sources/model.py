"""The uniform description of a user's model and the one loader that picks the right source.

torch is imported only when a torch-based model is loaded or asked for, so an ONNX model can be
described and run with numpy + onnxruntime alone.
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgemap.errors import EdgemapError

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
        from edgemap.convert.onnx_to_torch import onnx_to_torch

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
        from edgemap.convert.onnx_export import export_onnx

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


def is_user_model(source: str | Path) -> bool:
    """True when `source` names a user model (.onnx, .pt2, or an entry point with ':'), not a zoo checkpoint."""
    s = str(source)
    return s.lower().endswith((".onnx", ".pt2")) or (":" in Path(s).name and not Path(s).is_file())


def load_user_model(source: str | Path, weights: str | Path | None = None,
                    input_shape: tuple[int, ...] | None = None,
                    fallback_shape: tuple[int, ...] | None = None) -> UserModel:
    """Load a user model from an .onnx file, a .pt2 program, or 'pkg.module:build_fn' / 'file.py:build_fn'.

    weights: safetensors state dict for an entry point. input_shape: per-sample shape (no batch) for
    models that do not state one (entry points without an `input_shape` attribute, ONNX files with
    dynamic spatial axes). fallback_shape: used for an entry point only when neither input_shape nor the
    module states one (the evaluation passes the shape the data and preprocessing make).
    Every problem is a one-line EdgemapError naming the file.
    """
    s = str(source)
    if s.lower().endswith(".onnx"):
        from edgemap.models.sources.onnx_file import load_onnx_model

        model = load_onnx_model(Path(s), input_shape)
    elif s.lower().endswith(".pt2"):
        from edgemap.models.sources.exported import load_pt2_model

        model = load_pt2_model(Path(s), input_shape)
    elif ":" in s:
        from edgemap.models.sources.entry_point import load_entry_point_model

        model = load_entry_point_model(s, Path(weights) if weights else None, input_shape, fallback_shape)
    else:
        raise EdgemapError(f"{s}: not a user model; give an .onnx file, a .pt2 file (torch.export), or an "
                           f"entry point 'package.module:build_fn' / 'path/file.py:build_fn' with --weights")
    if weights and model.info.format != "torch":
        raise EdgemapError(f"{s}: --weights is only for entry-point models; {model.info.format} files carry their weights")
    return model


def load_user_model_ref(ref: dict) -> UserModel:
    """Inverse of UserModel.to_ref()."""
    if "path" in ref:
        return load_user_model(ref["path"])
    if "entry_point" in ref:
        shape = tuple(ref["input_shape"]) if ref.get("input_shape") else None
        return load_user_model(ref["entry_point"], ref.get("weights"), shape)
    raise EdgemapError(f"model reference {ref!r} has neither 'path' nor 'entry_point'")
