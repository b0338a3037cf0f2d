"""`edgemap convert --to openvino`: an OpenVINO IR (.xml + .bin) in FP32, FP16 or INT8, gated on parity.

The route is always via ONNX (exported from PyTorch when needed), so the operator check and the
model OpenVINO sees are the same ones onnxruntime sees. INT8 comes either from a QDQ ONNX model
(its QuantizeLinear/DequantizeLinear pairs become OpenVINO FakeQuantize layers) or from NNCF
post-training quantization calibrated on the shipped sample.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from edgemap.convert.onnx_convert import write_onnx
from edgemap.convert.operators import openvino_failure, report_unsupported
from edgemap.convert.parity import Tolerance
from edgemap.convert.result import ConversionResult, verify
from edgemap.convert.source import Source, calibration_inputs, parity_inputs
from edgemap.errors import EdgemapError

PRECISIONS = ("fp32", "fp16", "int8")


def is_qdq(onnx_path: Path) -> bool:
    """True when the ONNX graph already holds QuantizeLinear nodes (a statically quantized QDQ model)."""
    import onnx

    return any(n.op_type == "QuantizeLinear" for n in onnx.load(str(onnx_path), load_external_data=False).graph.node)


def nncf_int8(ov_model, calibration: np.ndarray):  # noqa: ANN001, ANN201 - ov.Model in and out
    """Post-training INT8 with NNCF, one calibration image per item as NNCF expects."""
    import nncf

    dataset = nncf.Dataset([calibration[i:i + 1] for i in range(len(calibration))])
    return nncf.quantize(ov_model, dataset, subset_size=len(calibration))


def _build(onnx_path: Path, precision: str, calibration: Callable[[], np.ndarray], notes: list[str]):  # noqa: ANN202
    """The ov.Model at `precision`; `calibration` is called only when NNCF quantizes (a QDQ model brings its own)."""
    import openvino as ov

    try:
        model = ov.convert_model(str(onnx_path))
    except Exception as exc:  # unconverted operators: name them, and the backends that do take the model
        report_unsupported(onnx_path, "openvino", openvino_failure(onnx_path, exc))
        raise

    if precision == "int8" and is_qdq(onnx_path):
        notes.append("INT8 from the QDQ ONNX model's quantization parameters")
    elif precision == "int8":
        calib = calibration()
        model = nncf_int8(model, calib)
        notes.append(f"INT8 by NNCF post-training quantization, {len(calib)} calibration images")
    elif is_qdq(onnx_path):
        raise EdgemapError(f"{onnx_path.name}: is already an INT8 (QDQ) model; convert it with --precision int8")
    return model


_AUTO_NAME = re.compile(r"^[A-Za-z]+_\d+$")


def stable_names(model) -> None:  # noqa: ANN001 - ov.Model, renamed in place
    """Number the layers OpenVINO named itself (Type_N, N from a counter that runs on across conversions in one
    process) in graph order, so converting the same ONNX model twice writes the same .xml, byte for byte.
    Inputs and outputs keep their names."""
    for i, op in enumerate(model.get_ordered_ops()):
        if op.get_type_name() not in ("Parameter", "Result") and _AUTO_NAME.match(op.get_friendly_name()):
            op.set_friendly_name(f"{op.get_type_name()}_{i}")


def convert_to_openvino(src: Source, out: str | Path, precision: str = "fp32", calibration_n: int = 300,
                        parity_n: int = 1000, tolerance: Tolerance | None = None, opset: int = 18,
                        calibration: np.ndarray | None = None) -> ConversionResult:
    """Write `out` (.xml, with .bin beside it); refuse, leaving no file, when it fails the parity gate.
    INT8 calibrates on `calibration` (float32 NCHW) when given, else on `calibration_n` of the source's real inputs."""
    import openvino as ov

    out = Path(out)
    if out.suffix != ".xml":
        raise EdgemapError(f"{out}: an OpenVINO IR's file name must end in .xml (the weights go to .bin beside it)")
    if precision not in PRECISIONS:
        raise EdgemapError(f"unknown precision {precision!r}; OpenVINO conversion offers {', '.join(PRECISIONS)}")
    t0, notes = time.perf_counter(), []
    data = parity_inputs(src, parity_n)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp_dir:
        tmp_onnx, tmp_xml = Path(tmp_dir) / "model.onnx", Path(tmp_dir) / out.name
        write_onnx(src, tmp_onnx, opset)
        model = _build(tmp_onnx, precision, lambda: calibration if calibration is not None
                       else calibration_inputs(src, calibration_n), notes)
        stable_names(model)
        ov.save_model(model, str(tmp_xml), compress_to_fp16=precision == "fp16")
        report = verify(src, "openvino", tmp_xml, data, precision, tolerance, f"{src.name} -> OpenVINO {precision}")
        # weights first, then the .xml: a reader never finds an .xml whose .bin is missing or stale
        os.replace(tmp_xml.with_suffix(".bin"), out.with_suffix(".bin"))
        os.replace(tmp_xml, out)
    size = out.stat().st_size + out.with_suffix(".bin").stat().st_size
    return ConversionResult(out, "openvino", precision, src.name, report, size, time.perf_counter() - t0, notes)
