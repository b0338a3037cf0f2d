"""Post-training quantization of ONNX models with ONNX Runtime's quantizer: static INT8 (QDQ), dynamic INT8, FP16.

Static INT8 is the one that speeds up CNNs on CPUs: weights per channel, activations calibrated
on real images, QDQ format that ONNX Runtime fuses into QLinearConv kernels. Every INT8 result
is checked to run integer kernels in the graph the runtime executes.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemap.compress.calibration import calibration_array
from edgemap.compress.context import PassContext
from edgemap.compress.inspect import op_counts, require_integer_kernels, require_quantizable
from edgemap.compress.onnx_report import onnx_report
from edgemap.compress.static_quantizer import StaticQuantizer, copy_file, preprocess  # noqa: F401 - re-exported
from edgemap.core.atomic import atomic_path
from edgemap.core.passes import pass_function, register_pass
from edgemap.errors import EdgemapError

CALIBRATIONS = ("minmax", "entropy", "percentile")


@register_pass("quantize_static", consumes="onnx", produces="onnx", needs=("calibration",), precision="int8")
@dataclass(frozen=True)
class QuantizeStatic:
    """Static INT8, QDQ format: per-channel symmetric int8 weights, activations calibrated on `samples` images
    (uint8 asymmetric, or int8 symmetric with symmetric_activations). max_accuracy_drop (points): keep the
    most sensitive layers in float until the drop is met (accuracy control); exclude: nodes kept in float;
    float_first_last: also keep the first and the last quantizable layer in float (on small CNNs the first conv,
    with 3 input channels, and the classifier are slower in INT8 than in FP32 and the most sensitive)."""

    calibration: str = "minmax"
    samples: int = 512
    per_channel: bool = True
    symmetric_activations: bool = False
    percentile: float = 99.999
    max_accuracy_drop: float | None = None
    exclude: tuple[str, ...] = ()
    float_first_last: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.calibration not in CALIBRATIONS:
            raise EdgemapError(f"quantize_static: calibration must be one of {', '.join(CALIBRATIONS)}, got {self.calibration!r}")
        if self.samples < 1:
            raise EdgemapError(f"quantize_static: samples must be >= 1, got {self.samples}")
        if not 50 < self.percentile <= 100:
            raise EdgemapError(f"quantize_static: percentile must lie in (50, 100], got {self.percentile}")
        if self.max_accuracy_drop is not None and self.max_accuracy_drop < 0:
            raise EdgemapError("quantize_static: max_accuracy_drop must be >= 0")


def quantize_static_onnx(source: str | Path, out: str | Path, calib: np.ndarray, cfg: QuantizeStatic) -> dict:
    """Static INT8 QDQ quantization of one ONNX file with a given calibration array (float32 NCHW)."""
    with StaticQuantizer(source, calib, cfg) as q:
        return q.quantize(out, q.base_exclude)


def calibration_for(ctx: PassContext, samples: int, seed: int) -> tuple[np.ndarray, str]:
    """Calibration array from the training data, or the shipped sample when no training data is given."""
    from edgemap.data.sample import load_sample

    data = ctx.calibration_images()
    data = data if data is not None else load_sample()
    return calibration_array(data, samples, ctx.norm, seed), data.source


@pass_function(QuantizeStatic)
def quantize_static_file(cfg: QuantizeStatic, source: str | Path, out: str | Path, ctx: PassContext):  # noqa: ANN201
    """The quantize_static pass: INT8 model at `out` with a CompressionReport (accuracy control when asked)."""
    from edgemap.compress.accuracy_control import quantize_with_accuracy_control

    calib, calib_source = calibration_for(ctx, cfg.samples, cfg.seed)

    def work(report) -> None:  # noqa: ANN001
        with StaticQuantizer(source, calib, cfg) as q:
            if cfg.max_accuracy_drop is None:
                report.extra["int8"] = q.quantize(out, q.base_exclude)
                return
            if ctx.eval_set is None:
                raise EdgemapError("quantize_static: max_accuracy_drop needs evaluation data")
            control = quantize_with_accuracy_control(q, out, ctx.eval_set, ctx.norm, cfg.max_accuracy_drop)
            report.extra["accuracy_control"] = control
            report.extra["int8"] = require_integer_kernels(out)
            if not control["met"]:
                report.notes.append(f"accuracy drop {control['best_drop']:.2f} > {cfg.max_accuracy_drop} points cannot be "
                                    f"met; wrote the best found ({len(control['excluded'])} layers kept in float)")

    report = onnx_report("quantize_static", cfg, source, out, ctx, work)
    report.extra["calibration"] = {"samples": len(calib), "source": calib_source, "method": cfg.calibration}
    return report


@register_pass("quantize_dynamic", consumes="onnx", produces="onnx", precision="int8")
@dataclass(frozen=True)
class QuantizeDynamic:
    """Dynamic INT8: weights stored int8, activations quantized at run time. Meant for MatMul/Gemm-heavy models;
    on convolutions ONNX Runtime runs ConvInteger, several times slower than float (a warning says so)."""

    per_channel: bool = False
    weight_type: str = "auto"  # auto: uint8 when the model has Conv (ConvInteger has no int8-weight CPU kernel), else int8

    def __post_init__(self) -> None:
        if self.weight_type not in ("auto", "int8", "uint8"):
            raise EdgemapError(f"quantize_dynamic: weight_type must be auto, int8 or uint8, got {self.weight_type!r}")


@pass_function(QuantizeDynamic)
def quantize_dynamic_file(cfg: QuantizeDynamic, source: str | Path, out: str | Path, ctx: PassContext):  # noqa: ANN201
    """The quantize_dynamic pass (no calibration data needed)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    require_quantizable(source)
    has_conv = op_counts(source).get("Conv", 0) > 0
    wtype = cfg.weight_type if cfg.weight_type != "auto" else ("uint8" if has_conv else "int8")

    def work(report) -> None:  # noqa: ANN001
        with tempfile.TemporaryDirectory(prefix="edgemap-quant-") as d, atomic_path(out) as tmp:
            pre = Path(d) / "pre.onnx"
            preprocess(source, pre)
            quantize_dynamic(str(pre), str(tmp), per_channel=cfg.per_channel,
                             weight_type=QuantType.QUInt8 if wtype == "uint8" else QuantType.QInt8)
            report.extra["int8"] = require_integer_kernels(tmp)
        if has_conv:
            report.notes.append("dynamic INT8 on a convolutional model runs ConvInteger, typically ~4x slower than "
                                "FP32 on CPU; use quantize_static for CNNs")
            warnings.warn("quantize_dynamic on a convolutional model: expect it to be slower than FP32; "
                          "use quantize_static", stacklevel=2)

    return onnx_report("quantize_dynamic", cfg, source, out, ctx, work)


@register_pass("quantize_fp16", consumes="onnx", produces="onnx", precision="fp16")
@dataclass(frozen=True)
class QuantizeFp16:
    """FP16 weights and activations (inputs and outputs stay float32 unless keep_io_types is false)."""

    keep_io_types: bool = True


@pass_function(QuantizeFp16)
def quantize_fp16_file(cfg: QuantizeFp16, source: str | Path, out: str | Path, ctx: PassContext):  # noqa: ANN201
    """The quantize_fp16 pass, with onnxruntime.transformers' float16 converter (onnxconverter-common's code)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    def work(report) -> None:  # noqa: ANN001
        model = onnx.load(str(source))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            half = convert_float_to_float16(model, keep_io_types=cfg.keep_io_types)
        wrapped = OnnxModel(half)
        wrapped.topological_sort()  # the converter appends the input casts after their consumers
        half = wrapped.model
        with atomic_path(out) as tmp:
            onnx.save(half, str(tmp))
            onnx.checker.check_model(str(tmp))
        report.notes.append("ONNX Runtime's CPU provider has few FP16 kernels: it runs most FP16 ops through casts "
                            "to float32, so FP16 halves the file but is not faster on this CPU")

    return onnx_report("quantize_fp16", cfg, source, out, ctx, work)
