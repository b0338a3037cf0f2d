"""Build (and cache) the model file a candidate needs: pruned checkpoint -> FP32 ONNX -> precision -> backend format.

Every file is written atomically and keyed by what determines it, so a repeated or resumed
search, or two Ray workers asking for the same file, reuse it instead of rebuilding it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgemap.search.space import Candidate


def base_model(ctx: dict, ratio: float) -> Path:
    """The starting model for a pruning ratio: the user's model, or its pruned + fine-tuned variant."""
    if ratio == 0:
        return Path(ctx["model"])
    return Path(ctx["pruned"][f"{ratio:g}"])


def fp32_onnx(ctx: dict, ratio: float) -> Path:
    """FP32 ONNX of the (pruned) model; an .onnx input with no pruning is used as it is."""
    src = base_model(ctx, ratio)
    if src.suffix == ".onnx":
        return src
    out = Path(ctx["work_dir"]) / f"p{ratio:g}" / "fp32.onnx"
    if not out.is_file():
        from edgemap.convert.api import convert

        convert(src, "onnx", out, parity_n=ctx.get("parity_n", 256), **real_inputs(ctx))
    return out


def real_inputs(ctx: dict) -> dict:
    """The search's evaluation images (preprocessed as evaluated) as convert()'s parity inputs: a parity gate on
    random inputs is meaningless for INT8 (their activations lie outside the calibrated ranges)."""
    from edgemap.search.evaluate import eval_arrays  # evaluate imports this module

    x, labels, _ = eval_arrays(ctx["eval_npz"])
    return {"inputs": x, "labels": labels}


def calibration(ctx: dict) -> np.ndarray:
    """The calibration inputs (float32 NCHW), built once per search by the driver and stored as .npy."""
    return np.load(ctx["calibration_npy"])


def precision_onnx(ctx: dict, c: Candidate) -> Path:
    """The ONNX file at the candidate's precision (FP32, FP16, or static QDQ INT8 with its calibration)."""
    fp32 = fp32_onnx(ctx, c.prune_ratio)
    if c.precision == "fp32":
        return fp32
    out = Path(ctx["work_dir"]) / f"p{c.prune_ratio:g}" / (f"int8-{c.calibration}-ff.onnx" if c.precision == "int8" else "fp16.onnx")
    if out.is_file():
        return out
    if c.precision == "fp16":
        from edgemap.compress.context import PassContext
        from edgemap.compress.quantize import QuantizeFp16, quantize_fp16_file

        quantize_fp16_file(QuantizeFp16(), fp32, out, PassContext(latency_runs=0))
    else:
        from edgemap.compress.quantize import QuantizeStatic, quantize_static_onnx

        # first conv and classifier stay float: ORT's INT8 kernels for 3 input channels and the small final Gemm are
        # slower than FP32 (measured: x2.68 vs x1.94 faster than FP32 for resnet9s, same accuracy; compress_int8.md)
        quantize_static_onnx(fp32, out, calibration(ctx), QuantizeStatic(calibration=c.calibration, samples=ctx["calib_samples"],
                                                                          float_first_last=True))
    return out


def backend_model(ctx: dict, c: Candidate) -> Path:
    """The file the candidate's backend loads (.onnx, OpenVINO .xml, or .tflite), converted with a parity gate."""
    from edgemap.convert.api import convert

    onnx_path = precision_onnx(ctx, c)
    if c.backend == "onnxruntime":
        return onnx_path
    folder = Path(ctx["work_dir"]) / f"p{c.prune_ratio:g}"
    if c.backend == "openvino":
        out = folder / f"{onnx_path.stem}.xml"
        if not out.is_file():
            convert(onnx_path, "openvino", out, precision=c.precision, parity_n=ctx.get("parity_n", 256), **real_inputs(ctx))
        return out
    out = folder / f"{c.precision}-searchcal.tflite"  # LiteRT converts from the torch model (ONNX -> torch.fx)
    if not out.is_file():  # INT8 calibrates on the search's own calibration inputs, preprocessed as evaluated
        convert(base_model(ctx, c.prune_ratio), "litert", out, precision=c.precision, parity_n=ctx.get("parity_n", 256),
                calibration=calibration(ctx) if c.precision == "int8" else None, **real_inputs(ctx))
    return out
