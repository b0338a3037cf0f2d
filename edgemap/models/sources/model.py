"""The one loader that picks the right source for a user's model (ModelInfo and UserModel: edgemap.models.sources.info)."""

from __future__ import annotations

from pathlib import Path

from edgemap.errors import EdgemapError
from edgemap.models.sources.info import FORMATS, ModelInfo, UserModel, guess_layout  # noqa: F401 - re-exported

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
