"""`edgemap convert --to litert`: a .tflite from the PyTorch model via litert-torch, FP32 or INT8, gated on parity.

litert-torch traces the NCHW torch model and keeps its NCHW input and logits output (the
transposes to the NHWC kernels are inside the .tflite), so the same inputs feed every backend.
The model is converted at batch 1; the LiteRT session resizes the batch axis on demand.
INT8 is ai-edge-quantizer's static recipe (int8 weights per channel, int8 activations)
calibrated on the shipped sample, with the output layer kept float: int8 input tensor, float logits.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import re
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgemap.convert.parity import Tolerance
from edgemap.convert.result import ConversionResult, verify
from edgemap.convert.source import Source, calibration_inputs, parity_inputs
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


class GlobalPool(nn.Module):
    """Global max/mean over H and W, keeping them as 1x1: what AdaptiveMax/AvgPool2d(1) compute, in ops
    LiteRT lowers (it has no rule for aten.adaptive_max_pool2d)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(2, 3), keepdim=True) if self.mode == "max" else x.mean(dim=(2, 3), keepdim=True)


def litert_compatible(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """A copy of `model` with global adaptive poolings swapped for GlobalPool (same math); notes of what changed."""
    model, notes = copy.deepcopy(model).eval(), []
    for name, module in list(model.named_modules()):
        kinds = {nn.AdaptiveMaxPool2d: "max", nn.AdaptiveAvgPool2d: "avg"}
        mode = kinds.get(type(module))
        if mode and module.output_size in (1, (1, 1)):
            parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            setattr(parent, name.rpartition(".")[2], GlobalPool(mode))
            notes.append(f"layer {name!r}: {type(module).__name__}(1) rewritten as a global {mode} reduction for LiteRT")
    return model, notes


def _unsupported_error(model: nn.Module, exc: Exception, input_shape: tuple[int, ...]) -> EdgemapError:
    """Name the operator, the layers that emit it, and the backends that do accept the model."""
    text = str(exc)
    m = re.search(r"Lowering not found: (aten\.(\w+))", text)
    if not m:
        return EdgemapError(f"LiteRT conversion failed: {(text.strip().splitlines() or ['?'])[0][:300]}")
    op, base = m[1], m[2]
    snake = lambda s: re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", s).lower()  # noqa: E731 - AdaptiveMaxPool2d -> adaptive_max_pool2d
    layers = [n for n, mod in model.named_modules() if n and snake(type(mod).__name__) == base] or ["?"]
    return EdgemapError(f"operator {op} in layer {layers[0]!r} is not supported by LiteRT; "
                        f"backends that accept this model: {', '.join(_onnx_backends_for(model, input_shape)) or 'none found'}")


def _onnx_backends_for(model: nn.Module, input_shape: tuple[int, ...]) -> list[str]:
    """The ONNX backends that accept `model` (exported to a scratch file); [] when export itself fails."""
    from edgemap.models.onnx_export import export_onnx
    from edgemap.convert.operators import accepting_backends

    with tempfile.TemporaryDirectory() as tmp:
        try:
            return accepting_backends(export_onnx(model, Path(tmp) / "m.onnx", input_shape))
        except EdgemapError:
            return []


def tflite_fp32(model: nn.Module, input_shape: tuple[int, ...]) -> bytes:
    """Convert a torch module (eval mode) to a batch-1 FP32 .tflite flatbuffer."""
    example = (torch.zeros(1, *input_shape),)
    try:
        with _quiet():
            import litert_torch

            return bytes(litert_torch.convert(model.eval(), example).model_content())
    except Exception as exc:  # lowering errors name the aten operator that has no LiteRT rule
        raise _unsupported_error(model, exc, input_shape) from None


def tflite_int8(fp32: bytes, calibration: np.ndarray, float_input: bool = True) -> bytes:
    """INT8 .tflite with ai-edge-quantizer's static_wi8_ai8 recipe, min/max calibrated on `calibration`.

    The layer that produces the model's output, and the output itself, stay float: int8 logits
    have a resolution of range/256, which flips near-tied top-1 picks (on an early resnet9s checkpoint:
    86 % top-1 agreement with an int8 head, 98 % with a float one), and the head is tiny.
    float_input keeps the input tensor float and quantizes it with a QUANTIZE op inside the graph: done in
    Python by the caller instead, it took a fifth of a 0.03 ms INT8 model's run (same outputs, bit for bit).
    """
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe
    from ai_edge_quantizer.algorithm_manager import AlgorithmName
    from ai_edge_quantizer.qtyping import TFLOperationName

    interp = Interpreter(model_content=fp32)
    key = next(iter(interp.get_signature_list()))
    input_name = interp.get_signature_list()[key]["inputs"][0]
    with _quiet():
        q = quantizer.Quantizer(bytearray(fp32), recipe.static_wi8_ai8())
        q.update_quantization_recipe(".*", TFLOperationName.OUTPUT, algorithm_key=AlgorithmName.NO_QUANTIZE)
        if float_input:
            q.update_quantization_recipe(".*", TFLOperationName.INPUT, algorithm_key=AlgorithmName.NO_QUANTIZE)
        for out in interp.get_output_details():
            q.update_quantization_recipe(re.escape(out["name"]), TFLOperationName.ALL_SUPPORTED,
                                         algorithm_key=AlgorithmName.NO_QUANTIZE)
        samples = [{input_name: calibration[i:i + 1]} for i in range(len(calibration))]
        stats = q.calibrate({key: samples}, num_threads=1)
        return bytes(q.quantize(stats, enable_progress_report=False).quantized_model)


def _torch_form(src: Source) -> nn.Module:
    """LiteRT converts from PyTorch: the source's module, or an ONNX graph converted to torch.fx (the parity gate
    still compares against the original ONNX model in ONNX Runtime)."""
    if src.model is not None:
        return src.model
    from edgemap.models.onnx_to_torch import onnx_to_torch

    try:
        return onnx_to_torch(src.onnx_path)
    except EdgemapError as exc:
        raise EdgemapError(f"{src.name}: LiteRT conversion needs a PyTorch form of this ONNX model ({exc}); "
                           "use --to onnx or --to openvino") from None


def convert_to_litert(src: Source, out: str | Path, precision: str = "fp32", calibration_n: int = 300,
                      parity_n: int = 1000, tolerance: Tolerance | None = None,
                      calibration: np.ndarray | None = None) -> ConversionResult:
    """Write `out` (.tflite); refuse, leaving no file, when it fails the parity gate.
    INT8 calibrates on `calibration` (float32 NCHW) when given, else on `calibration_n` of the source's real inputs."""
    out = Path(out)
    if out.suffix != ".tflite":
        raise EdgemapError(f"{out}: a LiteRT model's file name must end in .tflite")
    if precision not in PRECISIONS:
        raise EdgemapError(f"unknown precision {precision!r}; LiteRT conversion offers {', '.join(PRECISIONS)}")
    t0 = time.perf_counter()
    calib = None  # resolved first: a model that cannot be calibrated is refused before the slow conversion
    if precision == "int8":
        calib = calibration if calibration is not None else calibration_inputs(src, calibration_n)
    model, notes = litert_compatible(_torch_form(src))
    flat = tflite_fp32(model, src.input_shape)
    if calib is not None:
        flat = tflite_int8(flat, calib)
        notes.append(f"INT8 by ai-edge-quantizer static_wi8_ai8, {len(calib)} calibration images")
    with atomic_path(out) as tmp:
        tmp.write_bytes(flat)
        report = verify(src, "litert", tmp, parity_inputs(src, parity_n), precision, tolerance,
                        f"{src.name} -> LiteRT {precision}")
    return ConversionResult(out, "tflite", precision, src.name, report, out.stat().st_size, time.perf_counter() - t0, notes)
