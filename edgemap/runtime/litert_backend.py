"""LiteRT backend: a .tflite run by ai-edge-litert's interpreter (XNNPACK on the CPU). No torch.

Models from litert-torch keep the torch layout (NCHW in, logits out): the converter inserts the
transposes itself. edgemap's INT8 models take and give float32 (they quantize inside the graph); a
fully-INT8 model made elsewhere takes and gives int8 tensors, and the session quantizes inputs and
dequantizes outputs with the model's own scale and zero point, so every LiteRT model is fed and read
as float32 like the other backends.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from edgemap.errors import EdgemapError
from edgemap.runtime.base import Session, TensorSpec
from edgemap.runtime.formats import check_tflite_file


class LitertSession(Session):
    """A tflite Interpreter behind the common API; the batch axis is resized on demand, and a model whose graph
    fixes its batch (a reshape to a constant shape) runs a batch image by image."""

    backend = "litert"

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        path = check_tflite_file(path)
        try:  # a corrupt file can also fail later, e.g. tensor names that are not UTF-8
            self._interp = Interpreter(model_path=str(path), num_threads=threads or None)
            self._interp.allocate_tensors()
            self._in = self._interp.get_input_details()[0]
            self._out = self._interp.get_output_details()[0]
        except Exception as exc:  # ValueError / RuntimeError from the flatbuffer verifier or op resolver
            raise EdgemapError(f"{path}: LiteRT cannot load this model ({_first_line(exc)})") from None
        self._batch = self._native_batch = int(self._in["shape"][0])
        self._fixed_batch = False
        self.path = path
        self.threads = threads

    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec(self._in["name"], (None, *map(int, self._in["shape"][1:])), "float32")]

    def outputs(self) -> list[TensorSpec]:
        return [TensorSpec(self._out["name"], (None, *map(int, self._out["shape"][1:])), "float32")]

    def quantized_io(self) -> bool:
        """True when the model's own input tensor is integer (a fully-INT8 model)."""
        return np.dtype(self._in["dtype"]).kind in "iu"

    def _resize(self, batch: int) -> None:
        try:
            self._interp.resize_tensor_input(self._in["index"], [batch, *map(int, self._in["shape"][1:])])
            self._interp.allocate_tensors()
        except Exception as exc:
            raise EdgemapError(f"{self.path}: this model cannot run at batch {batch} ({_first_line(exc)})") from None
        self._in = self._interp.get_input_details()[0]
        self._out = self._interp.get_output_details()[0]
        self._batch = batch

    def _run(self, x: np.ndarray) -> np.ndarray:
        if x.shape[0] != self._batch and not self._fixed_batch:
            try:
                self._resize(x.shape[0])
            except EdgemapError:
                if self._native_batch != 1:  # only a batch-1 graph can take any batch image by image
                    raise
                self._fixed_batch = True  # the graph fixes batch 1: back to it, and loop
                self._resize(1)
        if self._fixed_batch and len(x) > 1:
            return np.concatenate([self._invoke(x[i:i + 1]) for i in range(len(x))])
        return self._invoke(x)

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        try:
            self._interp.set_tensor(self._in["index"], _quantize(x, self._in))
            self._interp.invoke()
            y = self._interp.get_tensor(self._out["index"])
        except Exception as exc:
            raise EdgemapError(f"{self.path}: inference failed ({_first_line(exc)})") from None
        return _dequantize(y, self._out)

    def close(self) -> None:
        self._interp = None  # type: ignore[assignment]


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return x.astype(dtype, copy=False)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    # in place after the first division: the input is quantized on every call, and the temporaries of
    # np.clip(np.round(x / scale) + zero, ...) took a third of a small INT8 model's run
    q = np.divide(x, np.float32(scale), dtype=np.float32)
    np.rint(q, out=q)  # ties to even (TFLite's own QUANTIZE rounds them away from zero)
    np.add(q, zero, out=q)
    np.clip(q, info.min, info.max, out=q)
    return q.astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if np.dtype(detail["dtype"]).kind == "f":
        return y.astype(np.float32, copy=True)
    scale, zero = detail["quantization"]
    return (y.astype(np.float32) - zero) * np.float32(scale)


def _first_line(exc: Exception) -> str:
    return ((str(exc).strip().splitlines() or [exc.__class__.__name__])[0])[:300]


def load(path: str | Path, threads: int = 0) -> LitertSession:
    """Open a .tflite model with the LiteRT interpreter."""
    return LitertSession(path, threads)
