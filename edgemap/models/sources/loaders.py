"""The model sources a recipe's `model:` entry can name, registered as loaders that make the first Artifact.

    {path: net.safetensors}  an edgemap checkpoint      {path: net.onnx}  an ONNX file
    {path: net.pt2}          a torch.export program     {shipped: resnet9s}  the shipped checkpoint
    {entry_point: 'pkg.mod:build', weights: w.safetensors, input_shape: [3, 32, 32]}
"""

from __future__ import annotations

from pathlib import Path

from edgemap.core.artifact import Artifact
from edgemap.core.passes import register_source
from edgemap.errors import EdgemapError


def _path(ref: dict) -> Path:
    path = Path(str(ref["path"]))
    if not path.is_file():
        raise EdgemapError(f"{path}: model file not found")
    return path


def _suffix(ref: dict, suffix: str) -> bool:
    return set(ref) <= {"path"} and str(ref.get("path", "")).lower().endswith(suffix)


@register_source("checkpoint", "checkpoint", lambda ref: _suffix(ref, ".safetensors"))
def load_checkpoint_source(ref: dict) -> Artifact:
    """An edgemap checkpoint (.safetensors + JSON sidecar)."""
    from edgemap.models.checkpoint import read_info

    path = _path(ref)
    info = read_info(path)
    return Artifact(path, "checkpoint", "fp32", tuple(info.input_shape), {"path": str(path)})


@register_source("shipped", "checkpoint", lambda ref: set(ref) == {"shipped"})
def load_shipped_source(ref: dict) -> Artifact:
    """A checkpoint shipped with edgemap, by name."""
    from edgemap.models.checkpoint import read_info
    from edgemap.models.shipped import shipped_checkpoint

    path = shipped_checkpoint(str(ref["shipped"]))
    return Artifact(path, "checkpoint", "fp32", tuple(read_info(path).input_shape), {"shipped": str(ref["shipped"])})


@register_source("onnx", "onnx", lambda ref: _suffix(ref, ".onnx"))
def load_onnx_source(ref: dict) -> Artifact:
    """A user's ONNX file (checked and described; not rewritten)."""
    from edgemap.models.sources.onnx_file import load_onnx_model

    model = load_onnx_model(_path(ref))
    return Artifact(model.path, "onnx", "fp32", tuple(model.info.input_shape), {"path": str(model.path)})


@register_source("pt2", "pt2", lambda ref: _suffix(ref, ".pt2"))
def load_pt2_source(ref: dict) -> Artifact:
    """A torch.export program (.pt2)."""
    from edgemap.models.sources.exported import load_pt2_model

    model = load_pt2_model(_path(ref))
    return Artifact(model.path, "pt2", "fp32", tuple(model.info.input_shape), {"path": str(model.path)})


@register_source("entry_point", "entry_point", lambda ref: "entry_point" in ref)
def load_entry_point_source(ref: dict) -> Artifact:
    """A PyTorch builder 'pkg.module:fn' / 'file.py:fn' with optional safetensors weights."""
    from edgemap.models.sources.model import load_user_model_ref

    unknown = sorted(set(ref) - {"entry_point", "weights", "input_shape"})
    if unknown:
        raise EdgemapError(f"recipe: model entry point: unknown field(s) {', '.join(unknown)}; known: entry_point, weights, input_shape")
    model = load_user_model_ref(ref)
    weights = Path(ref["weights"]) if ref.get("weights") else None
    made_by = {"entry_point": str(ref["entry_point"]), "weights": str(weights) if weights else None,
               "input_shape": list(model.info.input_shape)}
    return Artifact(weights, "entry_point", "fp32", tuple(model.info.input_shape), made_by)


def source_artifact(ref: dict) -> Artifact:
    """The first artifact of a recipe, from its `model:` entry."""
    from edgemap.core.passes import source_for

    return source_for(ref).load(ref)


def model_ref(model: str | Path, weights: str | Path | None = None, input_shape: tuple[int, ...] | None = None) -> dict:
    """The recipe `model:` entry for what a user typed (--model, --weights)."""
    text = str(model)
    if text.lower().endswith((".safetensors", ".onnx", ".pt2")) and weights is None:
        return {"path": text}
    if ":" in Path(text).name and not Path(text).is_file():
        return {"entry_point": text, "weights": str(weights) if weights else None,
                "input_shape": list(input_shape) if input_shape else None}
    raise EdgemapError(f"{text}: unsupported model (an edgemap .safetensors checkpoint, an .onnx or .pt2 file, "
                       f"or an entry point 'pkg.module:build_fn' with --weights)")
