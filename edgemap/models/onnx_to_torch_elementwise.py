"""Element-wise ONNX operators and activations for the ONNX -> torch converter (registered in HANDLERS).

Arithmetic becomes python operators or torch functions; activations become nn modules, so the
converted graph stays readable and Torch-Pruning sees the same structure a hand-written model has.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import torch
from torch import nn

from edgemap.models.onnx_to_torch_registry import attrs, handles

_BINARY = {"Add": operator.add, "Sub": operator.sub, "Mul": operator.mul, "Div": operator.truediv, "Pow": torch.pow}


@handles(*_BINARY)
def binary(b: Any, node: Any) -> Any:
    """Add / Sub / Mul / Div / Pow -> the python operator (constants become buffers or floats)."""
    return b.call(_BINARY[node.op_type], b.value(node.input[0]), b.value(node.input[1]))


@handles("Identity", "Dropout")
def identity(b: Any, node: Any) -> Any:
    """Identity / Dropout (inference) pass their input through."""
    return b.value(node.input[0])


@handles("Cast")
def cast(b: Any, node: Any) -> Any:
    """Cast to float is a no-op in a float classifier; other casts are refused."""
    if attrs(node).get("to") != 1:  # only float -> float casts are no-ops in a float classifier
        raise b.error(node, f"cast to ONNX type {attrs(node).get('to')} is not supported")
    return b.value(node.input[0])


@handles("Clip")
def clip(b: Any, node: Any) -> Any:
    """Clip -> nn.ReLU6 for [0, 6], nn.ReLU for [0, inf), else nn.Hardtanh."""
    a = attrs(node)
    lo = a.get("min") if b.opset < 11 else (b.const(node.input[1]) if len(node.input) > 1 and node.input[1] else None)
    hi = a.get("max") if b.opset < 11 else (b.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None)
    for i, v in ((1, lo), (2, hi)):
        if v is None and b.opset >= 11 and len(node.input) > i and node.input[i]:
            raise b.error(node, "clip bounds are computed at run time, not constants")
    lo = None if lo is None else float(lo)
    hi = None if hi is None else float(hi)
    if lo == 0.0 and hi == 6.0:
        m: nn.Module = nn.ReLU6()
    elif lo == 0.0 and hi is None:
        m = nn.ReLU()
    else:
        m = nn.Hardtanh(-math.inf if lo is None else lo, math.inf if hi is None else hi)
    return b.call_module(node.name or "clip", m, b.value(node.input[0]))


def _activation(node: Any, a: dict) -> nn.Module | None:
    op = node.op_type
    simple = {"Relu": nn.ReLU, "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh, "HardSwish": nn.Hardswish,
              "Softplus": nn.Softplus, "Mish": nn.Mish, "Selu": nn.SELU}
    if op in simple:
        return simple[op]()
    if op == "LeakyRelu":
        return nn.LeakyReLU(float(a.get("alpha", 0.01)))
    if op == "Elu":
        return nn.ELU(float(a.get("alpha", 1.0)))
    if op == "Gelu":
        return nn.GELU(approximate="tanh" if a.get("approximate") == "tanh" else "none")
    if op == "HardSigmoid" and math.isclose(a.get("alpha", 0.2), 1 / 6, rel_tol=1e-5) and a.get("beta", 0.5) == 0.5:
        return nn.Hardsigmoid()
    return None


@handles("Relu", "Sigmoid", "Tanh", "HardSwish", "Softplus", "Mish", "Selu", "LeakyRelu", "Elu", "Gelu", "HardSigmoid")
def activation(b: Any, node: Any) -> Any:
    """Element-wise activations -> their nn module (HardSigmoid with other constants -> clamp)."""
    a = attrs(node)
    m = _activation(node, a)
    x = b.value(node.input[0])
    if m is None:  # HardSigmoid with other constants: max(0, min(1, alpha * x + beta))
        return b.call(torch.clamp, b.call(operator.add, b.call(operator.mul, x, float(a.get("alpha", 0.2))),
                                          float(a.get("beta", 0.5))), 0.0, 1.0)
    return b.call_module(node.name or node.op_type.lower(), m, x)


@handles("Softmax", "LogSoftmax")
def softmax(b: Any, node: Any) -> Any:
    """Softmax / LogSoftmax(axis) -> nn.Softmax / nn.LogSoftmax."""
    rank = len(b.shape(node.input[0]) or [0, 0])
    axis = int(attrs(node).get("axis", -1 if b.opset >= 13 else 1)) % rank
    if b.opset < 13 and rank != 2 and axis != rank - 1:  # old opsets flatten to 2-D around the axis
        raise b.error(node, f"opset {b.opset} softmax over axis {axis} of a rank-{rank} tensor is not supported")
    m = nn.Softmax(axis) if node.op_type == "Softmax" else nn.LogSoftmax(axis)
    return b.call_module(node.name or "softmax", m, b.value(node.input[0]))


_UNARY = {"Sqrt": torch.sqrt, "Exp": torch.exp, "Neg": torch.neg, "Abs": torch.abs, "Erf": torch.erf,
          "Log": torch.log, "Reciprocal": torch.reciprocal}


@handles(*_UNARY)
def unary(b: Any, node: Any) -> Any:
    """Sqrt, Exp, Neg, Abs, Erf, Log, Reciprocal -> the torch function."""
    return b.call(_UNARY[node.op_type], b.value(node.input[0]))
