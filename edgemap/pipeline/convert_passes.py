"""Every conversion as a registered pass: torch -> ONNX, ONNX -> OpenVINO IR, torch (or ONNX) -> LiteRT.

Each pass writes its file through the same parity gate `edgemap convert` uses, checked on real
images from the pass context (its calibration images, preprocessed as evaluated), so a recipe
and a search produce one and the same file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemap.compress.context import PassContext
from edgemap.compress.report import CompressionReport, file_size, timed
from edgemap.core import passes
from edgemap.convert.source import onnx_fixed_batch
from edgemap.core.artifact import TORCH_FORMATS, Artifact
from edgemap.errors import EdgemapError


def torch_form(a: Artifact):  # noqa: ANN201 - (nn.Module, normalization | None, fixed batch | None)
    """The torch module an artifact holds: a checkpoint, a .pt2 program, an entry point, or an ONNX graph
    converted to torch.fx (which may fail: the error says why)."""
    if a.format == "checkpoint":
        from edgemap.models.checkpoint import load_checkpoint

        model, info = load_checkpoint(a.path)
        return model, info.normalization, None
    if a.format == "pt2":
        from edgemap.models.sources.exported import load_pt2_model

        user = load_pt2_model(Path(a.path))
        return user.torch_module(), None, user.info.fixed_batch
    if a.format == "entry_point":
        from edgemap.models.sources.model import load_user_model_ref

        return load_user_model_ref(a.made_by).torch_module(), None, None
    if a.format == "onnx":
        from edgemap.models.onnx_to_torch import onnx_to_torch

        return onnx_to_torch(a.path), None, onnx_fixed_batch(Path(a.path))
    raise EdgemapError(f"{a.path}: a {a.format} model has no torch form")


def real_inputs(ctx: PassContext, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Up to n of the context's calibration images (seeded pick), preprocessed as the model is fed; None without data."""
    from edgemap.data.transforms import to_nchw_float

    data = ctx.calibration_images()
    if data is None:
        return None
    idx = np.sort(np.random.default_rng(0).choice(len(data), size=min(n, len(data)), replace=False))
    return to_nchw_float(data.images[idx], ctx.norm), data.labels[idx]


def source_of(a: Artifact, ctx: PassContext, prefer_torch: bool):  # noqa: ANN201 - convert.source.Source
    """The conversion Source of an artifact, checked on the context's real images."""
    from edgemap.convert.source import Source, with_inputs

    name = Path(a.path).stem if a.path else str(a.made_by.get("entry_point", "model")).rpartition(":")[2]
    if a.format == "onnx" and not prefer_torch:
        src = Source(name, tuple(a.input_shape), onnx_path=Path(a.path), fixed_batch=onnx_fixed_batch(Path(a.path)))
    else:
        module, norm, fixed = torch_form(a)
        src = Source(name, tuple(a.input_shape), model=module, fixed_batch=fixed,
                     onnx_path=Path(a.path) if a.format == "onnx" else None)
        if norm is not None:
            src.normalization = norm
    inputs = real_inputs(ctx, ctx.parity_n)
    return with_inputs(src, *inputs) if inputs is not None else src


def _report(technique: str, cfg: object, source: str | Path | None, result) -> CompressionReport:  # noqa: ANN001
    report = CompressionReport(technique, passes.config_to_dict(cfg), output=str(result.path))
    report.file_bytes = (file_size(source), result.size_bytes)
    report.extra["parity"] = result.parity.to_dict()
    report.notes += result.notes
    return report


@passes.register_pass("export_onnx", consumes=TORCH_FORMATS, produces="onnx")  # real images, when the context has some, only feed the parity gate
@dataclass(frozen=True)
class ExportOnnx:
    """A torch model (checkpoint, .pt2 program, entry point) -> ONNX, gated on parity with the torch model.
    simplify: rewrite with onnxslim (constant folding). A .pt2 saved at a fixed batch is exported at that batch."""

    opset: int = 18
    simplify: bool = False

    def __post_init__(self) -> None:
        if not 13 <= self.opset <= 23:
            raise EdgemapError(f"export_onnx: opset must lie in 13..23, got {self.opset}")


@passes.pass_function(ExportOnnx)
def export_onnx_pass(cfg: ExportOnnx, source: str | Path, out: str | Path, ctx: PassContext) -> CompressionReport:
    """Export to ONNX (accuracy before -> after measured when the context has evaluation data)."""
    from edgemap.convert.onnx_convert import convert_to_onnx

    src = source_of(ctx.source, ctx, prefer_torch=True)
    report = CompressionReport("export_onnx", passes.config_to_dict(cfg))
    with timed(report):
        result = convert_to_onnx(src, out, opset=cfg.opset, simplify=cfg.simplify, parity_n=ctx.parity_n)
    report.output, report.file_bytes = str(out), (file_size(source), result.size_bytes)
    report.extra["parity"] = result.parity.to_dict()
    if ctx.eval_set is not None and ctx.source.format == "checkpoint":
        from edgemap.compress.measure import onnx_accuracy, torch_accuracy

        report.accuracy = {"before": torch_accuracy(src.model, ctx.eval_set, src.normalization),
                           "after": onnx_accuracy(out, ctx.eval_set, src.normalization)}
    return report


PRECISIONS = ("fp32", "fp16", "int8")


@passes.register_pass("convert_openvino", consumes="onnx", produces="openvino", needs=("calibration",), precision="config")
@dataclass(frozen=True)
class ConvertOpenvino:
    """ONNX -> OpenVINO IR (.xml + .bin). int8 takes a QDQ ONNX model's own quantization (quantize_static first),
    or else NNCF post-training quantization on `samples` calibration images; fp16 compresses the weights."""

    precision: str = "fp32"
    samples: int = 300
    seed: int = 0

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise EdgemapError(f"convert_openvino: precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")


@passes.pass_function(ConvertOpenvino)
def convert_openvino_pass(cfg: ConvertOpenvino, source: str | Path, out: str | Path, ctx: PassContext) -> CompressionReport:
    """Convert with the parity gate (INT8 calibration only when the ONNX model is not already INT8)."""
    from edgemap.convert.openvino_convert import convert_to_openvino

    src = source_of(ctx.source, ctx, prefer_torch=False)
    calib = _calibration(ctx, cfg.samples, cfg.seed) if cfg.precision == "int8" and ctx.source.precision != "int8" else None
    result = convert_to_openvino(src, Path(out).with_suffix(".xml"), cfg.precision, parity_n=ctx.parity_n, calibration=calib)
    return _report("convert_openvino", cfg, source, result)


@passes.register_pass("convert_litert", consumes=(*TORCH_FORMATS, "onnx"), produces="litert", needs=("calibration",),
                      precision="config")
@dataclass(frozen=True)
class ConvertLitert:
    """A torch model (or an FP32 ONNX graph converted to torch.fx) -> LiteRT .tflite; int8 is ai-edge-quantizer's
    static recipe min/max-calibrated on `samples` images picked with `seed`. LiteRT has no FP16 path here."""

    precision: str = "fp32"
    samples: int = 300
    seed: int = 0

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "int8"):
            raise EdgemapError(f"convert_litert: precision must be fp32 or int8, got {self.precision!r}")


@passes.pass_function(ConvertLitert)
def convert_litert_pass(cfg: ConvertLitert, source: str | Path, out: str | Path, ctx: PassContext) -> CompressionReport:
    """Convert with the parity gate (against the source: torch eager, or the ONNX model in ONNX Runtime)."""
    from edgemap.convert.litert_convert import convert_to_litert

    if ctx.source.precision != "fp32":
        raise EdgemapError(f"convert_litert: takes an FP32 model (it quantizes itself), got a {ctx.source.precision} one")
    src = source_of(ctx.source, ctx, prefer_torch=ctx.source.format != "onnx")
    calib = _calibration(ctx, cfg.samples, cfg.seed) if cfg.precision == "int8" else None
    result = convert_to_litert(src, out, cfg.precision, parity_n=ctx.parity_n, calibration=calib)
    return _report("convert_litert", cfg, source, result)


def _calibration(ctx: PassContext, samples: int, seed: int) -> np.ndarray:
    """The same calibration array quantize_static draws (same images, same pick, same preprocessing)."""
    from edgemap.compress.quantize import calibration_for

    return calibration_for(ctx, samples, seed)[0]
