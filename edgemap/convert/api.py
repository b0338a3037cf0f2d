"""One entry point for every conversion: `convert(source, to, out, ...)`.

    from edgemap.convert.api import convert
    convert("runs/resnet9s.safetensors", "openvino", "out/resnet9s_int8.xml", precision="int8")

`source` is a checkpoint, an .onnx file, `zoo:NAME`, or an already opened Source.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgemap.convert.parity import Tolerance
from edgemap.convert.result import ConversionResult
from edgemap.convert.source import Source, open_source, with_inputs
from edgemap.errors import EdgemapError

TARGETS = ("onnx", "openvino", "litert")


def convert(source: str | Path | Source, to: str, out: str | Path, precision: str = "fp32", opset: int = 18,
            simplify: bool = True, calibration_n: int = 300, parity_n: int = 1000,
            tolerance: Tolerance | None = None, calibration: np.ndarray | None = None,
            inputs: np.ndarray | None = None, labels: np.ndarray | None = None) -> ConversionResult:
    """Convert `source` to the `to` format at `out`; raises EdgemapError (and writes nothing) on failure.

    inputs: real images (float32 NCHW, preprocessed as evaluated; labels optional) for the parity gate and, when
    `calibration` is not given, INT8 calibration. Without them, 3x32x32 models use the shipped sample; other input
    shapes are parity-checked on random inputs and cannot be calibrated.
    """
    src = source if isinstance(source, Source) else open_source(source)
    if inputs is not None:
        src = with_inputs(src, inputs, labels)
    if to == "onnx":
        from edgemap.convert.onnx_convert import convert_to_onnx

        if precision != "fp32":
            raise EdgemapError("ONNX conversion writes FP32; INT8 ONNX models come from the quantize pass "
                               "(edgemap.compress), and their .onnx file converts to OpenVINO with --precision int8")
        return convert_to_onnx(src, out, opset=opset, simplify=simplify, parity_n=parity_n, tolerance=tolerance)
    if to == "openvino":
        from edgemap.convert.openvino_convert import convert_to_openvino

        return convert_to_openvino(src, out, precision, calibration_n, parity_n, tolerance, opset, calibration)
    if to == "litert":
        from edgemap.convert.litert_convert import convert_to_litert

        return convert_to_litert(src, out, precision, calibration_n, parity_n, tolerance, calibration)
    raise EdgemapError(f"unknown target format {to!r}; choose from {', '.join(TARGETS)}")
