"""Validation networks for benchmarks/estimator_kernels.py: whole CNNs from families the kernel
sampler never builds (it builds one-to-four-node blocks), generated as ONNX with random weights.

Families: inverted_residual (MobileNetV2 blocks, ReLU6), hardswish_dw (depthwise + HardSwish +
residual, MobileNetV3-like), plain_bnfree (conv-ReLU stacks, no BatchNorm), grayscale28
(1x28x28, 3 convs, no BatchNorm), odd_input (3x40x40 / 3x45x45 / 3x24x24 with BatchNorm),
wide_shallow, narrow_deep, residual (ResNet basic blocks), vgg_fc (conv stacks + 2-layer FC
head), grouped (ResNeXt-like grouped 3x3). Every family draws widths, depths and sizes from a seed.
"""

from __future__ import annotations

import numpy as np
import onnx

from edgemap.devices.kernels.sampler import GraphBuilder


def _conv(g: GraphBuilder, x: str, cin: int, cout: int, k: int = 3, stride: int = 1, group: int = 1, bn: bool = True,
          act: str = "relu") -> str:
    y = g.op("Conv", [x, g.weight(cout, cin // group, k, k), g.weight(cout)], pads=[k // 2] * 4, strides=[stride] * 2, group=group)
    if bn:
        ones = np.ones(cout, np.float32)
        y = g.op("BatchNormalization", [y, g.const(ones), g.weight(cout), g.weight(cout), g.const(ones)])
    return g.act(y, act)


def _head(g: GraphBuilder, x: str, c: int, classes: int = 10, hidden: int = 0) -> str:
    y = g.op("Flatten", [g.op("GlobalAveragePool", [x])])
    if hidden:
        y = g.op("Relu", [g.op("Gemm", [y, g.weight(hidden, c), g.weight(hidden)], transB=1)])
        c = hidden
    return g.op("Gemm", [y, g.weight(classes, c), g.weight(classes)], transB=1)


def inverted_residual(rng: np.random.Generator, act: str = "relu6", bn: bool = True) -> tuple[onnx.ModelProto, str]:
    g, c = GraphBuilder(int(rng.integers(1 << 30))), int(rng.choice((16, 24, 32)))
    x = _conv(g, "x", 3, c, stride=1, bn=bn, act=act)
    for stage, (mult, reps) in enumerate(((1, 1), (2, int(rng.integers(1, 3))), (2, int(rng.integers(1, 4))))):
        expand = int(rng.choice((3, 4, 6)))
        for r in range(reps):
            cout = c * mult if r == 0 else c
            stride = 2 if r == 0 and stage > 0 else 1
            h = _conv(g, x, c, c * expand, k=1, bn=bn, act=act)
            h = _conv(g, h, c * expand, c * expand, stride=stride, group=c * expand, bn=bn, act=act)
            h = _conv(g, h, c * expand, cout, k=1, bn=bn, act="none")
            x = g.op("Add", [h, x]) if cout == c and stride == 1 else h
            c = cout
    return g.model([1, 3, 32, 32], _head(g, x, c)), f"width {c}"


def hardswish_dw(rng: np.random.Generator) -> tuple[onnx.ModelProto, str]:
    return inverted_residual(rng, act="hardswish", bn=bool(rng.random() < 0.5))


def _stack(rng: np.random.Generator, shape: list[int], widths: list[int], bn: bool, pool_every: int, hidden: int = 0,
           act: str = "relu") -> onnx.ModelProto:
    g = GraphBuilder(int(rng.integers(1 << 30)))
    x, c = "x", shape[1]
    for i, w in enumerate(widths):
        x = _conv(g, x, c, w, bn=bn, act=act)
        c = w
        if (i + 1) % pool_every == 0:
            x = g.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    return g.model(shape, _head(g, x, c, hidden=hidden))


def plain_bnfree(rng: np.random.Generator) -> tuple[onnx.ModelProto, str]:
    widths = [int(rng.choice((16, 24, 32, 48))) * (1 + i // 2) for i in range(int(rng.integers(3, 6)))]
    return _stack(rng, [1, 3, 32, 32], widths, bn=False, pool_every=2), f"widths {widths}"


def grayscale28(rng: np.random.Generator) -> tuple[onnx.ModelProto, str]:
    widths = [int(rng.choice((8, 16, 32))) * 2 ** i for i in range(3)]
    return _stack(rng, [1, 1, 28, 28], widths, bn=False, pool_every=1), f"widths {widths}"


def odd_input(rng: np.random.Generator) -> tuple[onnx.ModelProto, str]:
    hw = int(rng.choice((24, 40, 45)))
    widths = [int(rng.choice((16, 32))) * 2 ** (i // 2) for i in range(4)]
    return _stack(rng, [1, 3, hw, hw], widths, bn=True, pool_every=2), f"{hw}x{hw}, widths {widths}"


def wide_shallow(rng: np.random.Generator) -> tuple[onnx.ModelProto, str]:
    widths = [int(rng.choice((96, 128, 192)))] * int(rng.integers(2, 4))
    return _stack(rng, [1, 3, 32, 32], widths, bn=True, pool_every=1), f"widths {widths}"


def narrow_deep(rng: np.random.Generator) -> tuple[onnx.ModelProto, str]:
    widths = [int(rng.choice((8, 12, 16)))] * int(rng.integers(10, 18))
    return _stack(rng, [1, 3, 32, 32], widths, bn=True, pool_every=5), f"{len(widths)} x {widths[0]}"


def vgg_fc(rng: np.random.Generator) -> tuple[onnx.ModelProto, str]:
    widths = [int(rng.choice((32, 64))) * 2 ** (i // 2) for i in range(int(rng.integers(4, 7)))]
    return _stack(rng, [1, 3, 32, 32], widths, bn=True, pool_every=2, hidden=int(rng.choice((64, 128, 256)))), f"widths {widths}"


def residual(rng: np.random.Generator, group: int = 1) -> tuple[onnx.ModelProto, str]:
    g = GraphBuilder(int(rng.integers(1 << 30)))
    c = int(rng.choice((16, 32))) * (2 if group > 1 else 1)
    x = _conv(g, "x", 3, c)
    for stage in range(int(rng.integers(2, 4))):
        cout, stride = (c * 2, 2) if stage else (c, 1)
        h = _conv(g, x, c, cout, stride=stride, group=group if c % group == 0 and cout % group == 0 else 1)
        h = _conv(g, h, cout, cout, act="none", group=group)
        short = x if stride == 1 and cout == c else _conv(g, x, c, cout, k=1, stride=stride, act="none")
        x = g.op("Relu", [g.op("Add", [h, short])])
        c = cout
    return g.model([1, 3, 32, 32], _head(g, x, c)), f"width {c}"


def grouped(rng: np.random.Generator) -> tuple[onnx.ModelProto, str]:
    return residual(rng, group=int(rng.choice((4, 8))))


FAMILIES = {f.__name__: f for f in (inverted_residual, hardswish_dw, plain_bnfree, grayscale28, odd_input, wide_shallow,
                                    narrow_deep, residual, vgg_fc, grouped)}


def generate(per_family: int, seed: int = 2026) -> dict[str, tuple[onnx.ModelProto, str]]:
    """name -> (FP32 model, description): `per_family` variants of every family."""
    rng = np.random.default_rng(seed)
    return {f"{fam}_{i}": fn(rng) for fam, fn in FAMILIES.items() for i in range(per_family)}
