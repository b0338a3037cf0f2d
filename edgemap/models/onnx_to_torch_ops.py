"""One handler per ONNX operator for the ONNX -> torch converter: node in, fx node out.

Layers with weights become nn modules (Conv2d, BatchNorm2d/1d, Linear) so that Torch-Pruning can
prune them; pooling and activations become modules too (readable, prunable graphs); the rest
are torch functions. Each handler raises builder.error(node, reason) for a form it cannot express.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgemap.models.onnx_to_torch_registry import attrs, handles

def _weight(b: Any, node: Any, i: int, what: str) -> np.ndarray:
    w = b.const(node.input[i]) if len(node.input) > i else None
    if w is None:
        raise b.error(node, f"{what} is computed at run time, not a constant")
    return np.asarray(w, np.float32)


def _param(arr: np.ndarray) -> nn.Parameter:
    return nn.Parameter(torch.from_numpy(np.array(arr, dtype=np.float32, copy=True)))


# --- conv / pooling padding --------------------------------------------------------------------
def _pads(b: Any, node: Any, a: dict, kernel: list[int], strides: list[int], dil: list[int]) -> list[int]:
    """ONNX pads [top, left, bottom, right] with auto_pad resolved from the inferred input shape."""
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", "VALID"):
        return list(a.get("pads", [0] * 4)) if auto == "NOTSET" else [0] * 4
    shape = b.shape(node.input[0])
    if not shape or any(s is None for s in shape[2:]):
        raise b.error(node, f"auto_pad={auto} needs a static input size")
    begin, end = [], []
    for size, k, s, d in zip(shape[2:], kernel, strides, dil):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return begin + end


def _padded(b: Any, node: Any, x: Any, pads: list[int], fill: float = 0.0) -> tuple[Any, tuple[int, int]]:
    """Symmetric pads go to the layer; asymmetric ones become an explicit pad module before it."""
    top, left, bottom, right = pads
    if top == bottom and left == right:
        return x, (top, left)
    return b.call_module(f"{node.name}_pad", nn.ConstantPad2d((left, right, top, bottom), fill), x), (0, 0)


def _check_2d(b: Any, node: Any, kernel: list[int]) -> None:
    if len(kernel) != 2:
        raise b.error(node, f"only 2-D kernels are supported, got {len(kernel)}-D")


@handles("Conv")
def conv(b: Any, node: Any) -> Any:
    """Conv (2-D, any groups/strides/dilations; auto_pad and asymmetric pads resolved) -> nn.Conv2d."""
    a = attrs(node)
    w = _weight(b, node, 1, "the weight")
    kernel = list(a.get("kernel_shape", w.shape[2:]))
    _check_2d(b, node, kernel)
    strides, dil = list(a.get("strides", [1, 1])), list(a.get("dilations", [1, 1]))
    x, padding = _padded(b, node, b.value(node.input[0]), _pads(b, node, a, kernel, strides, dil))
    groups = int(a.get("group", 1))
    has_bias = len(node.input) > 2 and node.input[2] != ""
    m = nn.Conv2d(w.shape[1] * groups, w.shape[0], tuple(kernel), tuple(strides), padding, tuple(dil), groups, has_bias)
    m.weight = _param(w)
    if has_bias:
        m.bias = _param(_weight(b, node, 2, "the bias"))
    return b.call_module(node.input[1], m, x)


@handles("BatchNormalization")
def batch_norm(b: Any, node: Any) -> Any:
    """BatchNormalization (inference form) -> nn.BatchNorm2d / nn.BatchNorm1d with the running statistics."""
    if len([o for o in node.output if o]) > 1:
        raise b.error(node, "training-mode batch norm (running-statistics outputs) is not supported")
    scale, bias, mean, var = (_weight(b, node, i, n) for i, n in enumerate(("scale", "bias", "mean", "var"), 1))
    rank = len(b.shape(node.input[0]) or [0, 0, 0, 0])
    m = (nn.BatchNorm2d if rank == 4 else nn.BatchNorm1d)(len(scale), eps=float(attrs(node).get("epsilon", 1e-5)))
    m.weight, m.bias = _param(scale), _param(bias)
    m.running_mean.copy_(torch.from_numpy(mean.copy()))
    m.running_var.copy_(torch.from_numpy(var.copy()))
    return b.call_module(node.input[1].removesuffix(".weight"), m.eval(), b.value(node.input[0]))


def _linear(b: Any, node: Any, w_out_in: np.ndarray, bias: np.ndarray | None, x: Any) -> Any:
    m = nn.Linear(w_out_in.shape[1], w_out_in.shape[0], bias is not None)
    m.weight = _param(w_out_in)
    if bias is not None:
        m.bias = _param(np.broadcast_to(bias.reshape(-1), (w_out_in.shape[0],)))
    return b.call_module(node.input[1], m, x)


@handles("Gemm")
def gemm(b: Any, node: Any) -> Any:
    """Gemm with a constant B (transB either way, alpha/beta folded) -> nn.Linear."""
    a = attrs(node)
    if a.get("transA", 0):
        raise b.error(node, "transA=1 is not supported")
    w = _weight(b, node, 1, "B (the weight)")
    w = (w if a.get("transB", 0) else w.T) * float(a.get("alpha", 1.0))
    bias = None
    if len(node.input) > 2 and node.input[2]:
        bias = _weight(b, node, 2, "C (the bias)") * float(a.get("beta", 1.0))
        if bias.size not in (1, w.shape[0]):
            raise b.error(node, f"bias of shape {bias.shape} is not per output feature")
    return _linear(b, node, w, bias, b.value(node.input[0]))


@handles("MatMul")
def matmul(b: Any, node: Any) -> Any:
    """MatMul by a constant 2-D matrix -> nn.Linear (a following Add of a bias vector is fused); else torch.matmul."""
    w = b.const(node.input[1])
    x = b.value(node.input[0])
    if w is None or w.ndim != 2:
        return b.call(torch.matmul, x, b.value(node.input[1]))
    add = b.only_consumer(node.output[0])  # MatMul + Add(bias) is a Linear layer
    other = None if add is None or add.op_type != "Add" else next(i for i in add.input if i != node.output[0])
    bias = b.const(other) if other else None
    if bias is not None and bias.ndim == 1 and bias.shape[0] == w.shape[1]:
        b.skip.add(id(add))
        b.env[add.output[0]] = _linear(b, node, np.asarray(w, np.float32).T, np.asarray(bias, np.float32), x)
        return None
    return _linear(b, node, np.asarray(w, np.float32).T, None, x)


def _pool_common(b: Any, node: Any, fill: float) -> tuple[Any, dict, list[int], list[int], tuple[int, int]]:
    a = attrs(node)
    kernel = list(a["kernel_shape"])
    _check_2d(b, node, kernel)
    strides, dil = list(a.get("strides", [1, 1])), list(a.get("dilations", [1, 1]))
    x, padding = _padded(b, node, b.value(node.input[0]), _pads(b, node, a, kernel, strides, dil), fill)
    return x, a, kernel, strides, padding


@handles("MaxPool")
def max_pool(b: Any, node: Any) -> Any:
    """MaxPool (2-D) -> nn.MaxPool2d; asymmetric pads become a -inf pad module first."""
    if len([o for o in node.output if o]) > 1:
        raise b.error(node, "the Indices output is not supported")
    x, a, kernel, strides, padding = _pool_common(b, node, float("-inf"))
    m = nn.MaxPool2d(tuple(kernel), tuple(strides), padding, tuple(a.get("dilations", [1, 1])),
                     ceil_mode=bool(a.get("ceil_mode", 0)))
    return b.call_module(node.name or "maxpool", m, x)


@handles("AveragePool")
def avg_pool(b: Any, node: Any) -> Any:
    """AveragePool (2-D) -> nn.AvgPool2d with ONNX count_include_pad semantics."""
    x, a, kernel, strides, padding = _pool_common(b, node, 0.0)
    if list(a.get("dilations", [1, 1])) != [1, 1]:
        raise b.error(node, "dilated average pooling is not supported")
    m = nn.AvgPool2d(tuple(kernel), tuple(strides), padding, ceil_mode=bool(a.get("ceil_mode", 0)),
                     count_include_pad=bool(a.get("count_include_pad", 0)))
    return b.call_module(node.name or "avgpool", m, x)


@handles("GlobalAveragePool", "GlobalMaxPool")
def global_pool(b: Any, node: Any) -> Any:
    """GlobalAveragePool / GlobalMaxPool -> nn.AdaptiveAvgPool2d(1) / nn.AdaptiveMaxPool2d(1)."""
    rank = len(b.shape(node.input[0]) or [0] * 4)
    if rank != 4:
        raise b.error(node, f"only 4-D inputs are supported, got rank {rank}")
    m = nn.AdaptiveAvgPool2d(1) if node.op_type == "GlobalAveragePool" else nn.AdaptiveMaxPool2d(1)
    return b.call_module(node.name or "gpool", m, b.value(node.input[0]))


def _axes(b: Any, node: Any, rank: int) -> list[int] | None:
    """Axes from the attribute (old opsets) or the constant second input (new opsets)."""
    a = attrs(node)
    if "axes" in a:
        axes = list(a["axes"])
    elif len(node.input) > 1 and node.input[1]:
        v = b.const(node.input[1])
        if v is None:
            raise b.error(node, "axes are computed at run time, not a constant")
        axes = [int(i) for i in np.asarray(v).reshape(-1)]
    else:
        return None
    return sorted(i % rank for i in axes)


@handles("ReduceMean", "ReduceSum", "ReduceMax")
def reduce(b: Any, node: Any) -> Any:
    """ReduceMean/Max over H, W -> adaptive pooling (+ flatten); other axes -> torch.mean/sum/amax."""
    x, shape = b.value(node.input[0]), b.shape(node.input[0])
    if shape is None:
        raise b.error(node, "input rank unknown")
    a = attrs(node)
    axes = _axes(b, node, len(shape))
    keep = bool(a.get("keepdims", 1))
    if axes is None:
        if a.get("noop_with_empty_axes", 0):
            return x
        axes = list(range(len(shape)))
    if axes == [2, 3] and len(shape) == 4 and node.op_type != "ReduceSum":  # global pooling: keep it a module
        pool = nn.AdaptiveAvgPool2d(1) if node.op_type == "ReduceMean" else nn.AdaptiveMaxPool2d(1)
        y = b.call_module(node.name or "gpool", pool, x)
        return y if keep else b.call(torch.flatten, y, 1)
    fn = {"ReduceMean": torch.mean, "ReduceSum": torch.sum, "ReduceMax": torch.amax}[node.op_type]
    return b.call(fn, x, tuple(axes), keepdim=keep)


@handles("Flatten")
def flatten(b: Any, node: Any) -> Any:
    """Flatten(axis) -> nn.Flatten for axis 1, else the equivalent torch.flatten pair."""
    axis = int(attrs(node).get("axis", 1))
    rank = len(b.shape(node.input[0]) or [])
    x = b.value(node.input[0])
    axis = axis % rank if rank and axis < 0 else axis
    if axis == 1:
        return b.call_module(node.name or "flatten", nn.Flatten(1), x)
    if axis == 0:
        return b.call(torch.reshape, x, (1, -1))
    return b.call(torch.flatten, b.call(torch.flatten, x, axis), 0, axis - 1)


@handles("Reshape")
def reshape(b: Any, node: Any) -> Any:
    """Reshape -> torch.flatten(x, 1) when it is a flatten (prunable), else a static torch.reshape."""
    x, src, dst = b.value(node.input[0]), b.shape(node.input[0]), b.shape(node.output[0])
    if src and dst and len(dst) == 2 and len(src) >= 2 and None not in src[1:] and dst[1] == math.prod(src[1:]):
        return b.call(torch.flatten, x, 1)  # (N, C, H, W) -> (N, C*H*W): follows pruned channel counts
    if dst is None or None in dst[1:]:
        target = b.const(node.input[1])
        if target is None or 0 in target.tolist() or (src and src[0] is None and -1 not in target.tolist()):
            raise b.error(node, "target shape is neither static nor a plain flatten")
        return b.call(torch.reshape, x, tuple(int(v) for v in target))
    return b.call(torch.reshape, x, (-1, *dst[1:]))


@handles("Squeeze", "Unsqueeze")
def squeeze(b: Any, node: Any) -> Any:
    """Squeeze / Unsqueeze with constant axes; squeezing (N, C, 1, 1) is a flatten."""
    x, shape = b.value(node.input[0]), b.shape(node.input[0])
    out_rank = len(b.shape(node.output[0]) or [])
    axes = _axes(b, node, len(shape or []) if node.op_type == "Squeeze" else out_rank)
    if node.op_type == "Squeeze":
        if shape and len(shape) == 4 and axes == [2, 3]:
            return b.call(torch.flatten, x, 1)  # (N, C, 1, 1) -> (N, C), as after global pooling
        return b.call(torch.squeeze, x, tuple(axes)) if axes else b.call(torch.squeeze, x)
    for ax in axes or []:
        x = b.call(torch.unsqueeze, x, ax)
    return x


@handles("Transpose")
def transpose(b: Any, node: Any) -> Any:
    """Transpose(perm) -> torch.permute."""
    perm = attrs(node).get("perm")
    shape = b.shape(node.input[0])
    perm = list(perm) if perm else list(reversed(range(len(shape or []))))
    return b.call(torch.permute, b.value(node.input[0]), tuple(perm))


@handles("Concat")
def concat(b: Any, node: Any) -> Any:
    """Concat(axis) -> torch.cat."""
    return b.call(torch.cat, [b.value(i) for i in node.input], dim=int(attrs(node)["axis"]))


@handles("Pad")
def pad(b: Any, node: Any) -> Any:
    """Pad (constant mode) -> F.pad with the axes reordered the torch way."""
    a = attrs(node)
    if a.get("mode", "constant") != "constant":
        raise b.error(node, f"pad mode {a.get('mode')!r} is not supported")
    pads = a.get("pads") if b.opset < 11 else b.const(node.input[1])
    if pads is None:
        raise b.error(node, "pads are computed at run time, not a constant")
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    value = float(a.get("value", 0.0)) if b.opset < 11 else float(
        b.const(node.input[2]) if len(node.input) > 2 and node.input[2] else 0.0)
    if len(node.input) > 3 and node.input[3]:
        raise b.error(node, "the axes input is not supported")
    rank = len(pads) // 2
    torch_pads: list[int] = []
    for axis in reversed(range(rank)):  # torch orders pads from the last axis, (begin, end) pairs
        torch_pads += [pads[axis], pads[axis + rank]]
    return b.call(F.pad, b.value(node.input[0]), tuple(torch_pads), "constant", value)
