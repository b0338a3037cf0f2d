"""`edgemap convert --to litert`: a .tflite from the PyTorch model via litert-torch, FP32 or INT8, gated on parity.

litert-torch traces the NCHW torch model and keeps its NCHW input and logits output (the
transposes to the NHWC kernels are inside the .tflite), so the same inputs feed every backend.
The model is converted at batch 1; the LiteRT session resizes the batch axis on demand.
INT8 is ai-edge-quantizer's static recipe (int8 weights per channel, int8 activations)
calibrated on the shipped sample: a fully-integer model, with int8 input and output tensors.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np

from edgemap.convert.parity import Tolerance
from edgemap.convert.result import ConversionResult, verify
from edgemap.convert.source import Source, parity_inputs
from edgemap.core.atomic import atomic_path
from edgemap.errors import EdgemapError

PRECISIONS = ("fp32", "int8")


@contextlib.contextmanager
def _quiet():
    """litert-torch and the quantizer print progress bars and TF/absl logs; the CLI keeps its own output."""
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    level = logging.root.level
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        logging.root.setLevel(logging.ERROR)
        try:
            yield
        finally:
            logging.root.setLevel(level)


def tflite_fp32(model, input_shape: tuple[int, ...]) -> bytes:  # noqa: ANN001 - torch.nn.Module
    """Convert a torch module (eval mode) to a batch-1 FP32 .tflite flatbuffer."""
    import torch

    example = (torch.zeros(1, *input_shape),)
    try:
        with _quiet():
            import litert_torch

            edge_model = litert_torch.convert(model.eval(), example)
            return bytes(edge_model.model_content())
    except Exception as exc:  # lowering errors name the aten operator that has no LiteRT rule
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:300]
        raise EdgemapError(f"LiteRT conversion failed: {first}; the ONNX backends (--to onnx, --to openvino) "
                           "may accept this model") from None


def tflite_int8(fp32: bytes, calibration: np.ndarray) -> bytes:
    """Fully-INT8 .tflite with ai-edge-quantizer's static_wi8_ai8 recipe, min/max calibrated on `calibration`."""
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe

    signature = Interpreter(model_content=fp32).get_signature_list()
    key = next(iter(signature))
    input_name = signature[key]["inputs"][0]
    with _quiet():
        q = quantizer.Quantizer(bytearray(fp32), recipe.static_wi8_ai8())
        samples = [{input_name: calibration[i:i + 1]} for i in range(len(calibration))]
        stats = q.calibrate({key: samples}, num_threads=1)
        return bytes(q.quantize(stats, enable_progress_report=False).quantized_model)


def convert_to_litert(src: Source, out: str | Path, precision: str = "fp32", calibration_n: int = 300,
                      parity_n: int = 1000, tolerance: Tolerance | None = None) -> ConversionResult:
    """Write `out` (.tflite); refuse, leaving no file, when it fails the parity gate."""
    out = Path(out)
    if out.suffix != ".tflite":
        raise EdgemapError(f"{out}: a LiteRT model's file name must end in .tflite")
    if precision not in PRECISIONS:
        raise EdgemapError(f"unknown precision {precision!r}; LiteRT conversion offers {', '.join(PRECISIONS)}")
    if src.model is None:
        raise EdgemapError(f"{src.name}: LiteRT conversion starts from the PyTorch model (a .safetensors checkpoint "
                           "or zoo:NAME); for an .onnx file use --to onnx or --to openvino")
    t0, notes = time.perf_counter(), []
    flat = tflite_fp32(src.model, src.input_shape)
    if precision == "int8":
        flat = tflite_int8(flat, parity_inputs(src, calibration_n)[0])
        notes.append(f"INT8 by ai-edge-quantizer static_wi8_ai8, {calibration_n} calibration images")
    with atomic_path(out) as tmp:
        tmp.write_bytes(flat)
        report = verify(src, "litert", tmp, parity_inputs(src, parity_n), precision, tolerance,
                        f"{src.name} -> LiteRT {precision}")
    return ConversionResult(out, "tflite", precision, src.name, report, out.stat().st_size, time.perf_counter() - t0, notes)
