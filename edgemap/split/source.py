"""The model a split starts from, as one ONNX file plus the preprocessing and class names it needs.

A zoo name with shipped weights or an edgemap checkpoint is exported to ONNX once (cached by the
checkpoint's hash); a user's .onnx file is used as it is. From then on both are the same: a graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgemap.data.preprocess import PreprocessSpec
from edgemap.errors import EdgemapError


@dataclass(frozen=True)
class SplitSource:
    """The whole model as ONNX, how its input is made from uint8 images, and what its outputs mean."""

    name: str
    onnx_path: Path
    spec: PreprocessSpec
    class_names: tuple[str, ...] | None
    sha256: str  # of the whole ONNX model: both halves of a split carry it


def resolve_source(model: str | None, preprocess: str | None, work: Path) -> SplitSource:
    """`model`: a zoo name with shipped weights (default resnet9s), a .safetensors checkpoint or an .onnx file."""
    import dataclasses

    from edgemap.data.preprocess import parse_preprocess
    from edgemap.deploy.bundle import sha256
    from edgemap.models.shipped import DEFAULT_MODEL, shipped_checkpoint

    text = model or DEFAULT_MODEL
    if text.lower().endswith(".onnx"):
        path = Path(text)
        if not path.is_file():
            raise EdgemapError(f"{path}: model file not found")
        if not preprocess:
            raise EdgemapError(f"{path}: a user model needs --preprocess (e.g. 'cifar10' or 'resize=32x32,mean=0.5,std=0.5')")
        spec = parse_preprocess(preprocess)
        info = _onnx_info(path)
        if spec.resize is None:
            spec = dataclasses.replace(spec, resize=tuple(int(v) for v in info.image_hw))
        if spec.num_channels != info.channels or spec.layout != info.layout:
            raise EdgemapError(f"{path}: the model takes {info.channels}-channel {info.layout.upper()} input; --preprocess "
                               f"{preprocess!r} makes {spec.num_channels}-channel {spec.layout.upper()} "
                               f"(set channels=gray/rgb, layout=nchw/nhwc)")
        return SplitSource(path.stem, path, spec, None, sha256(path))
    ckpt = Path(text) if text.endswith(".safetensors") else shipped_checkpoint(text)
    if not ckpt.is_file():
        raise EdgemapError(f"{ckpt}: model file not found")
    return _export_checkpoint(ckpt, preprocess, work)


def _export_checkpoint(ckpt: Path, preprocess: str | None, work: Path) -> SplitSource:
    import dataclasses

    from edgemap.data.preprocess import parse_preprocess
    from edgemap.deploy.bundle import sha256
    from edgemap.models.checkpoint import read_info

    info = read_info(ckpt)
    spec = parse_preprocess(preprocess) if preprocess else PreprocessSpec.from_normalization(info.normalization)
    spec = spec if spec.resize else dataclasses.replace(spec, resize=tuple(info.input_shape[1:3]))
    out = work / f"{ckpt.stem}-{sha256(ckpt)[:12]}.onnx"
    if not out.is_file():
        from edgemap.convert.onnx_export import export_onnx
        from edgemap.models.checkpoint import load_checkpoint

        work.mkdir(parents=True, exist_ok=True)
        module, _ = load_checkpoint(ckpt)
        export_onnx(module, out, tuple(info.input_shape))
    return SplitSource(ckpt.stem, out, spec, tuple(info.class_names), sha256(out))


def _onnx_info(path: Path):  # noqa: ANN202 - ModelInfo
    """What the ONNX model's input is (fixed spatial size, channels, layout), read by the shared loader."""
    from edgemap.models.sources.onnx_file import load_onnx_model

    return load_onnx_model(path, None).info
