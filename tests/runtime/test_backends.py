"""Every backend behind the same Session API: spec, results, threads, and bad input refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from edgemap.errors import EdgemapError
from edgemap.runtime.registry import BACKENDS, load_session

ENGINES = ["onnxruntime", "openvino", "litert"]


def _x(batch: int = 3) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((batch, 3, 32, 32)).astype(np.float32)


def test_every_backend_is_registered() -> None:
    assert set(ENGINES + ["torch"]) <= set(BACKENDS)


@pytest.mark.parametrize("backend", ENGINES)
def test_session_matches_torch(tiny_models: dict, backend: str) -> None:
    x = _x()
    with load_session(backend, tiny_models[backend], threads=1) as s:
        assert s.backend == backend
        spec = s.inputs()[0]
        assert spec.shape == (None, 3, 32, 32) and spec.dtype == "float32"
        assert s.outputs()[0].shape[-1] == 10
        y = s.run(x)
    np.testing.assert_allclose(y, tiny_models["reference"].reference(x), atol=1e-4)


@pytest.mark.parametrize("backend", ENGINES)
def test_backend_picked_from_suffix_and_batch_sizes_vary(tiny_models: dict, backend: str) -> None:
    s = load_session(None, tiny_models[backend], threads=2)
    assert s.backend == backend
    for batch in (1, 5, 2):
        assert s.run(_x(batch)).shape == (batch, 10)
    s.close()


@pytest.mark.parametrize("backend", ENGINES)
@pytest.mark.parametrize("bad, message", [
    (lambda x: x.astype(np.float64), "dtype float64"),
    (lambda x: x[:, :2], "shape"),
    (lambda x: x[0], "shape"),
    (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x).astype(np.float32), "NaN/Inf"),
    (lambda x: np.full_like(x, np.inf), "NaN/Inf"),
    (lambda x: x.tolist(), "numpy array"),
])
def test_bad_inputs_are_reported(tiny_models: dict, backend: str, bad, message: str) -> None:  # noqa: ANN001
    with load_session(backend, tiny_models[backend], threads=1) as s:
        with pytest.raises(EdgemapError, match=message):
            s.run(bad(_x()))


def test_fixed_batch_model_refuses_a_larger_batch(tiny_models: dict) -> None:
    with load_session("onnxruntime", tiny_models["fixed_batch"], threads=1) as s:
        assert s.inputs()[0].shape[0] == 2
        assert s.run(_x(2)).shape == (2, 10)
        with pytest.raises(EdgemapError, match="batch larger than this fixed-batch model accepts"):
            s.run(_x(5))


def test_unknown_backend_and_bad_threads(tiny_models: dict) -> None:
    with pytest.raises(EdgemapError, match="unknown backend 'tensorrt'; known backends: onnxruntime"):
        load_session("tensorrt", tiny_models["onnxruntime"])
    with pytest.raises(EdgemapError, match="threads must be >= 0"):
        load_session("onnxruntime", tiny_models["onnxruntime"], threads=-1)


def test_litert_int8_model_takes_and_gives_float(tmp_path) -> None:  # noqa: ANN001
    from ai_edge_litert.interpreter import Interpreter

    from edgemap.convert.api import convert
    from edgemap.convert.litert_convert import tflite_int8
    from edgemap.convert.parity import Tolerance
    from edgemap.convert.source import open_source

    src = open_source("zoo:tiny")
    res = convert(src, "litert", tmp_path / "q.tflite", precision="int8", calibration_n=16, parity_n=32,
                  tolerance=Tolerance(None, 0.5))
    ops = [op["op_name"] for op in Interpreter(model_path=str(res.path))._get_ops_details()]
    assert ops[0] == "QUANTIZE" and "CONV_2D" in ops  # the graph quantizes its own float input
    # the same model with an int8 input tensor (as other tools make them): the session quantizes in Python
    int8_in = tmp_path / "int8_in.tflite"
    fp32 = convert(src, "litert", tmp_path / "f.tflite", parity_n=8).path.read_bytes()
    int8_in.write_bytes(tflite_int8(fp32, _x(16), float_input=False))
    ref = src.reference(_x())
    outs = []
    for path, int_io in ((res.path, False), (int8_in, True)):
        with load_session(None, path, threads=1) as s:
            assert s.quantized_io() is int_io and s.inputs()[0].dtype == "float32"
            outs.append(s.run(_x()))
    for y in outs:
        assert y.dtype == np.float32
        assert np.abs(y - ref).max() < 0.25 * np.abs(ref).max() + 0.05  # int8 steps, not garbage


def test_litert_input_quantization_rounds_and_saturates() -> None:
    from edgemap.runtime.litert_backend import _quantize

    detail = {"dtype": np.int8, "quantization": (0.5, 3)}
    x = np.array([[0.0, 0.24, 0.26, -0.75, 100.0, -100.0]], dtype=np.float32)
    np.testing.assert_array_equal(_quantize(x, detail), np.array([[3, 3, 4, 1, 127, -128]], dtype=np.int8))


def test_openvino_runs_an_onnx_file_directly(tiny_models: dict) -> None:
    x = _x()
    with load_session("openvino", tiny_models["onnxruntime"], threads=1) as s:
        assert s.backend == "openvino"
        np.testing.assert_allclose(s.run(x), tiny_models["reference"].reference(x), atol=1e-4)
