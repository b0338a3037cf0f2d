"""Checkpoints: safetensors weights + a JSON sidecar (never pickle).

`name.safetensors` holds the state dict; `name.json` says how to rebuild and feed the model:
architecture, number of classes, input shape, normalisation, class names, metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from edgemap import __version__
from edgemap.core.atomic import atomic_path, write_json
from edgemap.data.dataset import CIFAR10_CLASSES
from edgemap.data.transforms import Normalization
from edgemap.errors import EdgemapError
from edgemap.models import zoo


@dataclass
class CheckpointInfo:
    """What the JSON sidecar records about a checkpoint."""

    architecture: str
    num_classes: int = 10
    input_shape: tuple[int, int, int] = (3, 32, 32)
    normalization: Normalization = field(default_factory=Normalization)
    class_names: tuple[str, ...] = CIFAR10_CLASSES
    metrics: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    # Layer widths that differ from the zoo build (pruned models): module name -> constructor sizes.
    layers: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {
            "format": "edgemap-checkpoint/1", "edgemap_version": __version__,
            "architecture": self.architecture, "num_classes": self.num_classes,
            "input_shape": list(self.input_shape), "normalization": self.normalization.to_dict(),
            "class_names": list(self.class_names), "metrics": self.metrics, "training": self.training,
        }
        if self.layers:
            d["layers"] = self.layers
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str) -> "CheckpointInfo":
        try:
            return cls(
                architecture=str(d["architecture"]), num_classes=int(d["num_classes"]),
                input_shape=tuple(int(v) for v in d["input_shape"]),  # type: ignore[arg-type]
                normalization=Normalization.from_dict(d["normalization"]),
                class_names=tuple(str(c) for c in d["class_names"]),
                metrics=dict(d.get("metrics", {})), training=dict(d.get("training", {})),
                layers=dict(d.get("layers", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EdgemapError(f"{where}: malformed checkpoint sidecar ({exc!r})") from None


def sidecar_path(weights: str | Path) -> Path:
    """model.safetensors -> model.json."""
    return Path(weights).with_suffix(".json")


def save_checkpoint(model: nn.Module, info: CheckpointInfo, weights: str | Path, sparse: bool = False) -> Path:
    """Write weights and sidecar atomically; returns the weights path.

    sparse: store mostly-zero tensors bit-packed (edgemap.models.sparse_format) so the file shrinks.
    """
    weights = Path(weights)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    metadata = {"architecture": info.architecture}
    if sparse:
        from edgemap.models.sparse_format import encode

        state, extra = encode(state)
        metadata.update(extra)
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    write_json(sidecar_path(weights), info.to_dict())
    return weights


def read_info(weights: str | Path) -> CheckpointInfo:
    """Read only the sidecar of a checkpoint."""
    side = sidecar_path(weights)
    if not side.is_file():
        raise EdgemapError(f"{side}: checkpoint sidecar not found (a checkpoint is NAME.safetensors + NAME.json)")
    try:
        return CheckpointInfo.from_dict(json.loads(side.read_text()), str(side))
    except json.JSONDecodeError as exc:
        raise EdgemapError(f"{side}: not valid JSON ({exc})") from None


def load_checkpoint(weights: str | Path) -> tuple[nn.Module, CheckpointInfo]:
    """Rebuild the zoo model named in the sidecar and load its weights (strictly)."""
    weights = Path(weights)
    if not weights.is_file():
        raise EdgemapError(f"{weights}: checkpoint not found")
    info = read_info(weights)
    model = zoo.build(info.architecture, num_classes=info.num_classes)
    if info.layers:
        apply_layer_shapes(model, info.layers, str(sidecar_path(weights)))
    try:
        state = load_file(str(weights))
        if any(k.endswith("::mask") for k in state):  # bit-packed sparse tensors
            from safetensors import safe_open

            from edgemap.models.sparse_format import decode

            with safe_open(str(weights), "pt") as f:
                state = decode(state, f.metadata())
    except (SafetensorError, OSError, ValueError, KeyError) as exc:
        raise EdgemapError(f"{weights}: not a readable safetensors file ({exc})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise EdgemapError(f"{weights}: weights do not match architecture {info.architecture!r} ({first})") from None
    model.eval()
    return model, info


def layer_shapes(model: nn.Module) -> dict:
    """The sizes of every Conv2d / Linear / BatchNorm2d, for the sidecar of a model whose widths were changed."""
    out: dict[str, dict] = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            out[name] = {"type": "Conv2d", "in": m.in_channels, "out": m.out_channels, "groups": m.groups,
                         "bias": m.bias is not None}
        elif isinstance(m, nn.Linear):
            out[name] = {"type": "Linear", "in": m.in_features, "out": m.out_features, "bias": m.bias is not None}
        elif isinstance(m, nn.BatchNorm2d):
            out[name] = {"type": "BatchNorm2d", "features": m.num_features}
    return out


def conv_widths(model: nn.Module) -> list[int]:
    """Output channels of every Conv2d, in module order (how wide a pruned model is)."""
    return [s["out"] for s in layer_shapes(model).values() if s["type"] == "Conv2d"]


def apply_layer_shapes(model: nn.Module, layers: dict, where: str = "checkpoint") -> None:
    """Re-create the named layers of a fresh zoo model with the saved sizes (kernel, stride, padding kept)."""
    modules = dict(model.named_modules())
    for name, shape in layers.items():
        old = modules.get(name)
        if old is None or type(old).__name__ != shape.get("type"):
            raise EdgemapError(f"{where}: layer {name!r} ({shape.get('type')}) does not exist in this architecture")
        if isinstance(old, nn.Conv2d):
            new: nn.Module = nn.Conv2d(shape["in"], shape["out"], old.kernel_size, old.stride, old.padding,
                                       old.dilation, shape["groups"], shape["bias"])
        elif isinstance(old, nn.Linear):
            new = nn.Linear(shape["in"], shape["out"], shape["bias"])
        else:
            new = nn.BatchNorm2d(shape["features"], eps=old.eps, momentum=old.momentum)
        parent_name, _, attr = name.rpartition(".")
        setattr(modules[parent_name] if parent_name else model, attr, new)


def to_float_input(images_nhwc_uint8, info: CheckpointInfo) -> torch.Tensor:
    """uint8 images -> the float NCHW tensor this checkpoint expects."""
    from edgemap.data.transforms import to_nchw_float

    return torch.from_numpy(to_nchw_float(images_nhwc_uint8, info.normalization))
