"""Calibration data for post-training quantization: N samples drawn from an image set, checked against the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgemap.data.dataset import ImageSet
from edgemap.data.transforms import Normalization, to_nchw_float
from edgemap.errors import EdgemapError


def model_input_shape(onnx_path: str | Path) -> tuple[str, tuple[int | None, ...]]:
    """Name and shape (None for symbolic axes) of an ONNX model's first input."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    inp = model.graph.input[0]
    dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim)
    return inp.name, dims


def calibration_array(data: ImageSet, samples: int, norm: Normalization, seed: int = 0) -> np.ndarray:
    """`samples` images drawn without replacement (seeded), normalised to float32 NCHW."""
    if samples < 1:
        raise EdgemapError(f"calibration needs at least 1 sample, got {samples}")
    n = min(samples, len(data))
    idx = np.sort(np.random.default_rng(seed).choice(len(data), size=n, replace=False))
    return to_nchw_float(data.images[idx], norm)


def check_calibration(x: np.ndarray, onnx_path: str | Path) -> None:
    """Raise EdgemapError when the calibration array cannot be fed to the model's input."""
    name, shape = model_input_shape(onnx_path)
    if not isinstance(x, np.ndarray) or x.dtype != np.float32:
        raise EdgemapError(f"calibration data must be a float32 array, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim != len(shape) or any(w is not None and w != g for w, g in zip(shape[1:], x.shape[1:])):
        want = "(N, " + ", ".join("?" if s is None else str(s) for s in shape[1:]) + ")"
        raise EdgemapError(f"calibration data has shape {x.shape}; {Path(onnx_path).name} input {name!r} expects {want}")
    if len(x) == 0:
        raise EdgemapError("calibration data is empty")
    if not np.isfinite(x).all():
        raise EdgemapError("calibration data holds NaN/Inf values")


def data_reader(x: np.ndarray, input_name: str, batch_size: int = 32):  # noqa: ANN201 - a CalibrationDataReader
    """An onnxruntime CalibrationDataReader over the rows of `x` (fixed-batch models get batch 1)."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter([x[i:i + batch_size] for i in range(0, len(x), batch_size)])

        def get_next(self) -> dict | None:
            batch = next(self._batches, None)
            return None if batch is None else {input_name: batch}

        def rewind(self) -> None:
            self.__init__()

    return _Reader()
