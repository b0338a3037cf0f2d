"""Small hand-built ONNX models with costs that can be worked out on paper."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper


def small_cnn(path: Path, reverse: bool = False, width: int = 4, gemm_in: int = 0) -> Path:
    """x[N,3,8,8] -> conv 3x3 (width) -> relu -> depthwise 3x3 -> global avg pool -> flatten -> gemm (2 classes).

    With `gemm_in` > 0 a second, large Gemm (width -> gemm_in -> 2) makes the weights big.
    """
    rng = np.random.default_rng(0)
    w = lambda *s: numpy_helper.from_array(rng.standard_normal(s).astype(np.float32) * 0.1)  # noqa: E731
    inits = [w(width, 3, 3, 3), w(width, 1, 3, 3), w(2, gemm_in or width)]
    for t, n in zip(inits, ("w1", "w2", "w3")):
        t.name = n
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], group=width),
             helper.make_node("GlobalAveragePool", ["c2"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"])]
    if gemm_in:
        big = w(gemm_in, width)
        big.name = "w0"
        inits.append(big)
        nodes += [helper.make_node("Gemm", ["f", "w0"], ["h"], transB=1), helper.make_node("Gemm", ["h", "w3"], ["y"], transB=1)]
    else:
        nodes.append(helper.make_node("Gemm", ["f", "w3"], ["y"], transB=1))
    graph = helper.make_graph(nodes[::-1] if reverse else nodes, "small",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def quantize_qdq(src: Path, dst: Path) -> Path:
    """Static QDQ INT8 version of a model with input 'x' [N,3,8,8]."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    feeds = iter([{"x": np.random.default_rng(i).standard_normal((1, 3, 8, 8)).astype(np.float32)} for i in range(4)])

    class Reader(CalibrationDataReader):
        def get_next(self):
            return next(feeds, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return dst


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """fp32, fp16 (out-of-order nodes, as onnxruntime's converter leaves them) and QDQ int8 versions of small_cnn."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    d = tmp_path_factory.mktemp("models")
    fp32 = small_cnn(d / "small_fp32.onnx")
    onnx.save(convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True), str(d / "small_fp16.onnx"))
    return {"fp32": fp32, "fp16": d / "small_fp16.onnx", "int8": quantize_qdq(fp32, d / "small_int8.onnx"),
            "reversed": small_cnn(d / "small_rev.onnx", reverse=True), "big": small_cnn(d / "big.onnx", gemm_in=1024 * 1024 // 4)}
