"""What a kernel's time depends on, as numbers: its type key and a feature vector.

The key says which regressor predicts it: the op as ONNX Runtime runs it (nchwc.Conv,
QLinearConv, Transpose, ...), the convolution's shape class (dense / depthwise / grouped,
1x1 or larger) and, for ops that run at any precision, the element type. Features follow
nn-Meter and LitePred: MACs, bytes moved, MACs per byte, channels and channels modulo the
SIMD block (16 floats or 64 bytes in an AVX-512 register, 8 in AVX2), kernel size, stride,
groups, output size, and the thread count.
"""

from __future__ import annotations

import math

from edgemap.devices.kernels.ortgraph import Kernel
from edgemap.devices.kernels.shapes import CONV_W, GEMM_W, GLOBAL_POOLS, MATMUL_W, POOLS

ELEM_BYTES = {"float": 4, "float16": 2, "uint8": 1, "int8": 1, "int32": 4, "int64": 8, "bool": 1, "double": 8}
INT8_OPS = {"QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul", "QGemm", "QLinearAdd", "QLinearMul",
            "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearConcat", "QLinearSigmoid", "QLinearLeakyRelu",
            "DynamicQuantizeMatMul", "MatMulIntegerToFloat"}
FEATURES = ("macs", "in_bytes", "w_bytes", "out_bytes", "macs_per_byte", "cin", "cout", "cin_mod_simd", "cout_mod_simd",
            "kernel", "stride", "groups", "spatial_out", "elements", "act", "gemm_k", "gemm_k_mod4", "threads")
ACT_CODES = {"Relu": 1, "Clip": 1, "LeakyRelu": 1, "HardSigmoid": 2, "HardSwish": 2, "Sigmoid": 3, "Tanh": 3}
SIMD = 16  # fp32 lanes of an AVX-512 register (and 64 int8 lanes / 4): the blocking MLAS pads channels to


def _size(shape: tuple[int, ...], dtype: str) -> int:
    return math.prod(shape) * ELEM_BYTES.get(dtype, 4)


def precision(k: Kernel) -> str:
    """int8 for integer kernels (and ops on 8-bit tensors), fp16 or fp32 otherwise."""
    base = k.op.split(".")[-1]
    data = k.in_types[0] if k.in_types else k.out_type
    if base in INT8_OPS or data in ("uint8", "int8"):
        return "int8"
    return "fp16" if data == "float16" else "fp32"


def _conv_geometry(k: Kernel) -> dict:
    """Channels, kernel, stride, groups and MACs of a convolution kernel."""
    base = k.op.split(".")[-1]
    w = k.inputs[CONV_W.get(base, 1) if len(k.inputs) > CONV_W.get(base, 1) else 1]
    last = bool(k.attrs.get("channels_last", 0))
    cin = k.inputs[0][-1] if last else k.inputs[0][1]
    groups = int(k.attrs.get("group", 1))
    out_elems = math.prod(k.output)
    spatial = out_elems // max(w[0], 1) // max(k.output[0], 1)
    ks = math.prod(w[2:]) if len(w) > 2 else 1
    strides = k.attrs.get("strides") or [1]
    return {"cin": cin, "cout": w[0], "groups": groups, "kernel": ks, "stride": strides[0], "spatial_out": spatial,
            "macs": out_elems * (w[1] if len(w) > 1 else 1) * ks}


def _gemm_geometry(k: Kernel) -> dict:
    base = k.op.split(".")[-1]
    idx = GEMM_W.get(base, MATMUL_W.get(base, 1))
    w = k.inputs[idx] if len(k.inputs) > idx else k.inputs[-1]
    x = k.inputs[0]
    kdim = x[-2] if base in GEMM_W and k.attrs.get("transA", 0) else x[-1]
    return {"cin": kdim, "cout": k.output[-1], "spatial_out": math.prod(k.output[:-1]), "macs": math.prod(k.output) * kdim}


def shape_class(k: Kernel) -> str:
    """The regressor key: op as run, plus the convolution's class or the element type."""
    base = k.op.split(".")[-1]
    if base in CONV_W:
        g = _conv_geometry(k)
        kind = "dw" if g["groups"] > 1 and g["groups"] == g["cin"] else "grouped" if g["groups"] > 1 else "dense"
        size = "1x1" if g["kernel"] == 1 else "kxk"
        return f"{k.op}:{kind}:{size}"
    if base in INT8_OPS:
        return k.op
    return f"{k.op}[{precision(k)}]"


def features(k: Kernel, threads: int) -> dict[str, float]:
    """The kernel's feature vector (see FEATURES)."""
    base = k.op.split(".")[-1]
    consts = k.const_inputs or (False,) * len(k.inputs)
    in_bytes = sum(_size(s, t) for s, t, c in zip(k.inputs, k.in_types, consts) if not c)
    w_bytes = sum(_size(s, t) for s, t, c in zip(k.inputs, k.in_types, consts) if c)
    out_bytes = _size(k.output, k.out_type)
    f = {"cin": 0, "cout": 0, "groups": 1, "kernel": 1, "stride": 1, "spatial_out": 0, "macs": 0}
    if base in CONV_W:
        f |= _conv_geometry(k)
    elif base in GEMM_W or base in MATMUL_W:
        f |= _gemm_geometry(k)
    elif base in POOLS or base in GLOBAL_POOLS:
        last = bool(k.attrs.get("channels_last", 0)) or base == "NhwcMaxPool"
        c = k.inputs[0][-1] if last else k.inputs[0][1] if len(k.inputs[0]) > 1 else 1
        ks = k.attrs.get("kernel_shape") or list(k.inputs[0][2:] if not last else k.inputs[0][1:-1])
        f |= {"cin": c, "cout": c, "kernel": math.prod(ks), "spatial_out": math.prod(k.output) // max(c, 1),
              "stride": (k.attrs.get("strides") or [1])[0]}
    elif len(k.output) >= 2:
        f |= {"cin": k.output[1], "cout": k.output[1]}
    # the reduction length of the GEMM a conv or gemm becomes: INT8 dot products consume 4 bytes at a time
    gemm_k = f["cin"] // max(f["groups"], 1) * f["kernel"] if f["macs"] else 0
    f |= {"gemm_k": gemm_k, "gemm_k_mod4": gemm_k % 4}
    moved = in_bytes + w_bytes + out_bytes
    return f | {"in_bytes": in_bytes, "w_bytes": w_bytes, "out_bytes": out_bytes, "macs_per_byte": f["macs"] / max(moved, 1),
                "cin_mod_simd": f["cin"] % SIMD, "cout_mod_simd": f["cout"] % SIMD, "elements": math.prod(k.output),
                "act": ACT_CODES.get(k.attrs.get("activation", ""), 0 if not k.attrs.get("activation") else 4), "threads": threads}


def vector(f: dict[str, float]) -> list[float]:
    """Features in FEATURES order, sizes in log scale (channel residues and threads as they are)."""
    linear = {"cin_mod_simd", "cout_mod_simd", "threads", "stride", "act", "gemm_k_mod4"}
    return [float(f[n]) if n in linear else math.log1p(float(f[n])) for n in FEATURES]
