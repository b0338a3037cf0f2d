"""Tiny ONNX graphs (one to four nodes) that exercise the kernels real CNNs run, FP32 and QDQ INT8.

A configuration is a small dict (a block kind and its sizes); `build` turns it into an FP32
model and `quantize` into the QDQ INT8 model onnxruntime.quantization makes of it (the same
settings as edgemap's quantize_static pass), so that ONNX Runtime's optimiser fuses it into the
integer kernels it would run in a user's model. Block kinds: convolutions (dense, depthwise,
grouped in 2-16 groups; 1x1 to 5x5; stride 1/2; with BatchNorm, ReLU/ReLU6/HardSwish/Swish/Sigmoid, residual
add and pooling), fully connected layers, concatenation and standalone elementwise ops.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CHANNELS = (1, 3, 4, 8, 12, 16, 24, 32, 40, 48, 64, 72, 96, 128, 160, 192, 256)
SIZES = (2, 4, 7, 8, 12, 14, 16, 20, 24, 28, 32)
ACTS = ("none", "relu", "relu6", "hardswish", "swish", "sigmoid")
KINDS = ("conv",) * 6 + ("fc", "concat", "eltwise")  # convolutions sampled most
ELTWISE = ("Add", "Mul", "Relu", "HardSwish", "Sigmoid", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool")
MAX_MACS = 60e6  # one sampled kernel stays well under a millisecond or two


def random_config(rng: np.random.Generator) -> dict:
    """One block configuration drawn at random (convolutions weighted up)."""
    kind = str(rng.choice(KINDS))
    c = lambda: int(rng.choice(CHANNELS))  # noqa: E731
    if kind == "fc":
        return {"kind": "fc", "n_in": c() * int(rng.choice((1, 4, 16))), "n_out": c(), "act": str(rng.choice(ACTS[:3])),
                "two": bool(rng.random() < 0.3)}
    hw = int(rng.choice(SIZES))
    if kind == "concat":
        return {"kind": "concat", "hw": hw, "c1": c(), "c2": c()}
    if kind == "eltwise":
        return {"kind": "eltwise", "hw": hw, "c": c(), "op": str(rng.choice(ELTWISE))}
    cin, groups = c(), str(rng.choice(("dense", "dense", "dw", "dw", "grouped")))
    cout = cin if groups == "dw" else c()
    g = int(rng.choice((2, 4, 8, 16)))
    if groups == "grouped" and (cin % g or cout % g or cin == g):
        groups = "dense"
    k = int(rng.choice((1, 1, 3, 3, 5))) if groups != "dw" else int(rng.choice((3, 3, 5)))
    cfg = {"kind": "conv", "hw": max(hw, k), "cin": cin, "cout": cout, "k": k, "stride": int(rng.choice((1, 1, 2))),
           "groups": groups, **({"g": g} if groups == "grouped" else {}), "act": str(rng.choice(ACTS)),
           "bn": bool(rng.random() < 0.5),
           "res": bool(rng.random() < 0.35), "pool": str(rng.choice(("none", "none", "none", "max", "avg", "gap_fc")))}
    return cfg if conv_macs(cfg) <= MAX_MACS else random_config(rng)


def conv_macs(cfg: dict) -> float:
    """MACs of a conv block's convolution (to keep sampled kernels small)."""
    per_group = cfg["cin"] if cfg["groups"] == "dense" else 1 if cfg["groups"] == "dw" else cfg["cin"] // cfg.get("g", 4)
    return (cfg["hw"] / cfg["stride"]) ** 2 * cfg["cout"] * per_group * cfg["k"] ** 2


def signature(cfg: dict) -> str:
    """A configuration's identity, for dropping duplicates."""
    return json.dumps(cfg, sort_keys=True)


class GraphBuilder:
    """A minimal graph builder: nodes, random initializers, fresh tensor names."""

    def __init__(self, seed: int = 0) -> None:
        self.nodes, self.inits, self.n, self.rng = [], [], 0, np.random.default_rng(seed)

    def name(self, stem: str) -> str:
        self.n += 1
        return f"{stem}{self.n}"

    def const(self, arr: np.ndarray) -> str:
        t = numpy_helper.from_array(arr.astype(arr.dtype), self.name("w"))
        self.inits.append(t)
        return t.name

    def weight(self, *shape: int) -> str:
        return self.const((self.rng.standard_normal(shape) * 0.1).astype(np.float32))

    def op(self, op: str, inputs: list[str], **kw) -> str:  # noqa: ANN003 - ONNX attributes
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.name(f"{op}_"), **kw))
        return out

    def act(self, x: str, act: str) -> str:
        if act == "relu":
            return self.op("Relu", [x])
        if act == "relu6":
            return self.op("Clip", [x, self.const(np.array(0, np.float32)), self.const(np.array(6, np.float32))])
        if act == "hardswish":
            return self.op("HardSwish", [x])
        if act == "swish":
            return self.op("Mul", [x, self.op("Sigmoid", [x])])
        if act == "sigmoid":
            return self.op("Sigmoid", [x])
        return x

    def model(self, x_shape: list[int], y: str) -> onnx.ModelProto:
        g = helper.make_graph(self.nodes, "sample", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        return m


def _conv(g: GraphBuilder, x: str, cfg: dict) -> str:
    cin, cout, k = cfg["cin"], cfg["cout"], cfg["k"]
    group = {"dense": 1, "dw": cin, "grouped": cfg.get("g", 4)}[cfg["groups"]]
    y = g.op("Conv", [x, g.weight(cout, cin // group, k, k), g.weight(cout)], pads=[k // 2] * 4,
             strides=[cfg["stride"]] * 2, group=group)
    if cfg["bn"]:
        ones = np.ones(cout, np.float32)
        y = g.op("BatchNormalization", [y, g.const(ones), g.weight(cout), g.weight(cout), g.const(ones)])
    y = g.act(y, cfg["act"])
    if cfg["res"] and cin == cout and cfg["stride"] == 1:
        y = g.op("Add", [y, x])
    if cfg["pool"] in ("max", "avg") and cfg["hw"] // cfg["stride"] >= 2:
        y = g.op("MaxPool" if cfg["pool"] == "max" else "AveragePool", [y], kernel_shape=[2, 2], strides=[2, 2])
    elif cfg["pool"] == "gap_fc":
        y = g.op("Flatten", [g.op("GlobalAveragePool", [y])])
        y = g.op("Gemm", [y, g.weight(10, cout), g.weight(10)], transB=1)
    return y


def build(cfg: dict, seed: int = 0) -> onnx.ModelProto:
    """The FP32 model of one configuration."""
    g = GraphBuilder(seed)
    if cfg["kind"] == "conv":
        return g.model([1, cfg["cin"], cfg["hw"], cfg["hw"]], _conv(g, "x", cfg))
    if cfg["kind"] == "fc":
        y = g.act(g.op("Gemm", ["x", g.weight(cfg["n_out"], cfg["n_in"]), g.weight(cfg["n_out"])], transB=1), cfg["act"])
        if cfg["two"]:
            y = g.op("Gemm", [y, g.weight(10, cfg["n_out"]), g.weight(10)], transB=1)
        return g.model([1, cfg["n_in"]], y)
    hw = cfg["hw"]
    if cfg["kind"] == "concat":
        a = g.op("Conv", ["x", g.weight(cfg["c1"], 8, 1, 1)])
        b = g.op("Conv", ["x", g.weight(cfg["c2"], 8, 1, 1)])
        return g.model([1, 8, hw, hw], g.op("Concat", [a, b], axis=1))
    op, c = cfg["op"], cfg["c"]
    if op in ("Add", "Mul"):
        y = g.op(op, ["x", g.op("Relu", ["x"])])
    elif op in ("MaxPool", "AveragePool"):
        y = g.op(op, ["x"], kernel_shape=[2, 2], strides=[2, 2]) if hw >= 2 else g.op("Relu", ["x"])
    elif op == "Clip":
        y = g.act("x", "relu6")
    else:
        y = g.op(op, ["x"])
    return g.model([1, c, hw, hw], y)


@contextlib.contextmanager
def _quiet_logging():
    """onnxruntime.quantization logs a pre-processing advice per call at WARNING (pre-processing is done here)."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def quantize(model: onnx.ModelProto, calib_inputs: int = 2) -> bytes:
    """The static QDQ INT8 model (per-channel int8 weights, uint8 activations) after ONNX Runtime's
    quantization pre-processing, serialized."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    feeds = iter([{"x": np.random.default_rng(i).standard_normal(shape).astype(np.float32)} for i in range(calib_inputs)])

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict | None:
            return next(feeds, None)

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            _quiet_logging():
        warnings.simplefilter("ignore")
        src, pre, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(src))
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)  # folds BatchNorm, as edgemap's pass does
        quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        extra_options={"WeightSymmetric": True})
        return dst.read_bytes()
