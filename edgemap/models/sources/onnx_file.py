"""Describe an .onnx classifier: its one input (shape, layout, dtype) and its number of classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgemap.errors import EdgemapError
from edgemap.models.sources.info import ModelInfo, UserModel, guess_layout

_ONNX_DTYPES = {1: "float32", 10: "float16", 11: "float64", 2: "uint8", 3: "int8", 7: "int64"}


def load_onnx_model(path: Path, input_shape: tuple[int, ...] | None = None) -> UserModel:
    """Check and describe an ONNX file; weights stay in the file, the graph is run by onnxruntime."""
    import onnx

    from edgemap.runtime.formats import check_onnx_file

    check_onnx_file(path)
    model = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise EdgemapError(f"{path}: a classifier has one input, this model has {len(inputs)} "
                           f"({', '.join(i.name for i in inputs)})")
    if not model.graph.output:
        raise EdgemapError(f"{path}: the model has no output")
    t = inputs[0].type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim]
    shape = _sample_shape(path, dims, input_shape)
    fixed = dims[0] if dims and dims[0] is not None else None
    dtype = _ONNX_DTYPES.get(t.elem_type, f"onnx type {t.elem_type}")
    info = ModelInfo(str(path), "onnx", shape, _num_classes(path, model, shape, fixed, dtype), guess_layout(shape),
                     dtype, fixed)
    return UserModel(info, path=path)


def _sample_shape(path: Path, dims: list[int | None], given: tuple[int, ...] | None) -> tuple[int, ...]:
    if len(dims) < 2:
        raise EdgemapError(f"{path}: input has rank {len(dims)}; an image classifier takes (batch, ...) tensors")
    if given is not None:
        if len(given) != len(dims) - 1 or any(d is not None and d != g for d, g in zip(dims[1:], given)):
            raise EdgemapError(f"{path}: input shape {tuple(given)} does not fit the model's input "
                               f"({', '.join('?' if d is None else str(d) for d in dims)})")
        return tuple(int(g) for g in given)
    if None in dims[1:]:
        raise EdgemapError(f"{path}: input axes ({', '.join('?' if d is None else str(d) for d in dims)}) are not all "
                           f"fixed; give the input shape (e.g. --input-shape 3,224,224)")
    return tuple(int(d) for d in dims[1:])  # type: ignore[arg-type]


def _num_classes(path: Path, model, shape: tuple[int, ...], fixed: int | None, dtype: str) -> int:  # noqa: ANN001
    """The output's last axis, from the graph when static, else by running the model once on zeros."""
    out = model.graph.output[0].type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in out.shape.dim]
    if len(dims) == 2 and dims[1]:
        return int(dims[1])
    from edgemap.runtime.onnxruntime_backend import OrtSession

    if dtype not in ("float32", "uint8"):
        raise EdgemapError(f"{path}: input type {dtype} is not supported (float32 or uint8)")
    with OrtSession(path, threads=1) as sess:
        y = sess.run(np.zeros((fixed or 1, *shape), np.dtype(dtype)))
    if y.ndim != 2:
        raise EdgemapError(f"{path}: output has shape {y.shape}; a classifier outputs (batch, classes)")
    return int(y.shape[1])
