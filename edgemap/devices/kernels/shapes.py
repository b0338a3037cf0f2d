"""Tensor shapes and element types through ONNX Runtime's optimised graph.

onnx's shape inference and ONNX Runtime's symbolic one both stop at the contrib ops the
optimiser writes (com.microsoft.nchwc Conv, QLinearConv with channels_last, NhwcMaxPool,
QGemm, ...), so shapes are propagated here with one rule per op family. An NCHWc-blocked
tensor is NCHW with its channels padded to the block (the optimiser pads the weights; ONNX
Runtime's profiler reports the same shapes); `channels_last` tensors are NHWC. An op without
a rule keeps its first input's shape and is named in the warnings, so a wrong figure is never silent.
"""

from __future__ import annotations

import math

from onnx import GraphProto, NodeProto, helper, numpy_helper

from edgemap.errors import EdgemapError

Shape = tuple[int, ...]
_DTYPE = {1: "float", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 10: "float16", 9: "bool", 11: "double"}
# op -> index of the weight input whose dim 0 is the output channel count
CONV_W = {"Conv": 1, "FusedConv": 1, "NhwcConv": 1, "ConvInteger": 1, "QLinearConv": 3, "NhwcFusedConv": 1}
POOLS = {"MaxPool", "AveragePool", "NhwcMaxPool", "QLinearAveragePool", "LpPool"}
GLOBAL_POOLS = {"GlobalAveragePool", "GlobalMaxPool", "QLinearGlobalAveragePool"}
MATMUL_W = {"MatMul": 1, "MatMulInteger": 1, "QLinearMatMul": 3, "FusedMatMul": 1, "DynamicQuantizeMatMul": 1,
            "MatMulIntegerToFloat": 1}
GEMM_W = {"Gemm": 1, "QGemm": 3, "FusedGemm": 1}
QBINARY = {"QLinearAdd", "QLinearMul"}  # data inputs 0 and 3


def attrs(node: NodeProto) -> dict:
    """The node's attributes as plain Python values (bytes decoded)."""
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _conv_out(n: int, k: int, s: int, pad: int, d: int, same: bool, ceil_mode: int = 0) -> int:
    if same:
        return math.ceil(n / s)
    span = n + pad - d * (k - 1) - 1
    return (math.ceil(span / s) if ceil_mode else span // s) + 1


def _spatial(x: Shape, a: dict, kernel: list[int], channels_last: bool, out_c: int) -> Shape:
    """Output shape of a windowed op (conv or pool) on an NCHW (or NHWC) input."""
    sp = list(x[1:-1] if channels_last else x[2:])
    nd = len(sp)
    strides, dil = a.get("strides", [1] * nd), a.get("dilations", [1] * nd)
    pads = a.get("pads", [0] * 2 * nd)
    same = str(a.get("auto_pad", "NOTSET")).startswith("SAME")
    out = [_conv_out(sp[i], kernel[i], strides[i], pads[i] + pads[i + nd], dil[i], same, a.get("ceil_mode", 0))
           for i in range(nd)]
    return (x[0], *out, out_c) if channels_last else (x[0], out_c, *out)


def _broadcast(shapes: list[Shape]) -> Shape:
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    return tuple(max(dims) for dims in zip(*padded))


class ShapeMap:
    """name -> (shape, element type) for every tensor of an optimised graph."""

    def __init__(self, graph: GraphProto) -> None:
        self.shape: dict[str, Shape] = {}
        self.dtype: dict[str, str] = {}
        self.consts: dict[str, object] = {}
        self.warnings: list[str] = []
        for init in graph.initializer:
            arr = numpy_helper.to_array(init)
            self.shape[init.name], self.dtype[init.name] = tuple(arr.shape), _DTYPE.get(init.data_type, "other")
            if arr.size <= 16:
                self.consts[init.name] = arr
        for vi in graph.input:
            if vi.name in self.shape:
                continue
            dims = vi.type.tensor_type.shape.dim
            if any(not d.dim_value for d in dims[1:]):
                raise EdgemapError(f"input {vi.name!r} has a symbolic dimension other than the batch; "
                                   "export the model with a fixed input size")
            self.shape[vi.name] = tuple([1] + [d.dim_value for d in dims[1:]]) if dims else ()
            self.dtype[vi.name] = _DTYPE.get(vi.type.tensor_type.elem_type, "other")
        for node in graph.node:
            self._visit(node)

    def _visit(self, node: NodeProto) -> None:
        ins = [i for i in node.input]
        missing = [i for i in ins if i and i not in self.shape]
        if missing:
            raise EdgemapError(f"node {node.name or node.op_type}: input {missing[0]!r} has no known shape "
                               "(graph not in topological order?)")
        a = attrs(node)
        out_shape, out_dtype = self._rule(node, a)
        shapes = self._split(node, a) if node.op_type == "Split" else [out_shape] * len(node.output)
        for o, shp in zip(node.output, shapes):
            if o:
                self.shape[o], self.dtype[o] = shp, out_dtype

    def _rule(self, node: NodeProto, a: dict) -> tuple[Shape, str]:
        """(output shape, output element type) of one node; first output only matters here."""
        op, ins = node.op_type, list(node.input)
        x = self.shape[ins[0]] if ins and ins[0] else ()
        dt = self.dtype.get(ins[0], "float") if ins else "float"
        last = bool(a.get("channels_last", 0))
        if op in CONV_W or (op == "Conv" and node.domain):
            w = self.shape[ins[CONV_W.get(op, 1)]]
            return _spatial(x, a, a.get("kernel_shape") or list(w[2:]), last, w[0]), self._qout(op, ins, 7, dt)
        if op in POOLS:
            c = x[-1] if last or op == "NhwcMaxPool" else x[1]
            return _spatial(x, a, a["kernel_shape"], last or op == "NhwcMaxPool", c), dt
        if op in GLOBAL_POOLS:
            return ((x[0], *[1] * (len(x) - 2), x[-1]) if last else (*x[:2], *[1] * (len(x) - 2))), dt
        if op in ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"):
            out = "float" if op == "DequantizeLinear" else self.dtype.get(ins[2], "uint8") if len(ins) > 2 and ins[2] else "uint8"
            return x, out
        return self._layout_rule(node, a, x, dt)

    def _layout_rule(self, node: NodeProto, a: dict, x: Shape, dt: str) -> tuple[Shape, str]:
        op, ins = node.op_type, list(node.input)
        if op == "Transpose":
            return tuple(x[p] for p in a.get("perm", range(len(x))[::-1])), dt
        if op == "ReorderInput" and a.get("channels_last", 0):
            return (x[0], x[-1], *x[1:-1]), dt
        if op == "ReorderOutput":  # drops the block padding of the channels
            c = a.get("channels", x[1])
            return ((x[0], *x[2:], c) if a.get("channels_last", 0) else (x[0], c, *x[2:])), dt
        if op == "Flatten":
            ax = a.get("axis", 1) % max(len(x), 1)
            return (math.prod(x[:ax]), math.prod(x[ax:])), dt
        if op == "Reshape":
            return self._reshape(x, ins), dt
        if op in ("Squeeze", "Unsqueeze"):
            return self._squeeze(op, x, a, ins), dt
        if op in GEMM_W:
            w = self.shape[ins[GEMM_W[op]]]
            m = x[1] if a.get("transA", 0) else x[0]
            return (m, w[0] if a.get("transB", 0) else w[1]), self._qout(op, ins, 8, dt)
        if op in MATMUL_W:
            w = self.shape[ins[MATMUL_W[op]]]
            out = (*_broadcast([x[:-2], w[:-2]]), x[-2], w[-1]) if len(w) > 1 else x[:-1]
            return out, "int32" if op in ("MatMulInteger",) else self._qout(op, ins, 7, dt)
        if op in ("Concat", "QLinearConcat"):
            return self._concat(op, a, ins), dt
        if op in QBINARY:
            return _broadcast([x, self.shape[ins[3]]]), dt
        if op in RESHAPING:
            return self._reshaping(op, a, x, ins), dt
        if op == "Split":
            return x, dt  # each output's own shape: see _split
        if op in ("Shape", "Size"):
            return (len(x),), "int64"
        data = [self.shape[i] for i in ins if i and i not in self.consts] or [x]
        if op not in ELEMENTWISE:
            self.warnings.append(f"{op}: no shape rule, output assumed shaped like its input")
        return _broadcast(data), dt

    def _const(self, ins: list[str], i: int) -> list | None:
        return self.consts[ins[i]].tolist() if len(ins) > i and ins[i] in self.consts else None

    def _reshaping(self, op: str, a: dict, x: Shape, ins: list[str]) -> Shape:
        """Pad, Resize, Slice and the Reduce* ops, from their attributes or constant inputs."""
        if op == "Pad":
            pads = a.get("pads") or self._const(ins, 1) or [0] * 2 * len(x)
            return tuple(d + pads[i] + pads[i + len(x)] for i, d in enumerate(x))
        if op in ("Resize", "Upsample"):
            sizes, scales = self._const(ins, 3), self._const(ins, 2 if op == "Resize" else 1) or a.get("scales")
            if sizes:
                return tuple(int(v) for v in sizes)
            return tuple(int(math.floor(d * f)) for d, f in zip(x, scales)) if scales else x
        if op == "Slice":
            starts, ends = self._const(ins, 1) or a.get("starts"), self._const(ins, 2) or a.get("ends")
            axes = self._const(ins, 3) or a.get("axes") or list(range(len(starts or [])))
            steps = self._const(ins, 4) or [1] * len(axes)
            out = list(x)
            for st, en, ax, sp in zip(starts or [], ends or [], axes, steps):
                out[ax] = len(range(*slice(st, en, sp).indices(x[ax])))
            return tuple(out)
        axes = a.get("axes") or self._const(ins, 1) or list(range(len(x)))
        axes = [ax % len(x) for ax in axes]
        keep = a.get("keepdims", 1)
        return tuple(1 if i in axes else d for i, d in enumerate(x) if keep or i not in axes)

    def _split(self, node: NodeProto, a: dict) -> list[Shape]:
        x, ins = self.shape[node.input[0]], list(node.input)
        ax = a.get("axis", 0) % len(x)
        parts = a.get("split") or self._const(ins, 1)
        n = len(node.output)
        parts = parts or [x[ax] // n] * n
        return [tuple(p if i == ax else d for i, d in enumerate(x)) for p in parts]

    def _qout(self, op: str, ins: list[str], zp: int, dt: str) -> str:
        if op in ("ConvInteger", "MatMulInteger"):
            return "int32"
        if op.startswith("QLinear") or op == "QGemm":
            return self.dtype.get(ins[zp], "uint8") if len(ins) > zp and ins[zp] else "float"
        return dt

    def _reshape(self, x: Shape, ins: list[str]) -> Shape:
        target = self.consts.get(ins[1])
        if target is None:
            raise EdgemapError(f"Reshape to a computed shape ({ins[1]!r}) is not supported by the kernel predictor")
        dims = [x[i] if d == 0 else int(d) for i, d in enumerate(target.tolist())]
        if -1 in dims:
            rest = math.prod(d for d in dims if d != -1)
            dims[dims.index(-1)] = math.prod(x) // max(rest, 1)
        return tuple(dims)

    def _squeeze(self, op: str, x: Shape, a: dict, ins: list[str]) -> Shape:
        axes = a.get("axes")
        if axes is None and len(ins) > 1 and ins[1] in self.consts:
            axes = self.consts[ins[1]].tolist()
        if op == "Squeeze":
            axes = [ax % len(x) for ax in axes] if axes is not None else [i for i, d in enumerate(x) if d == 1]
            return tuple(d for i, d in enumerate(x) if i not in axes)
        out = list(x)
        for ax in sorted(ax % (len(x) + len(axes)) for ax in axes):
            out.insert(ax, 1)
        return tuple(out)

    def _concat(self, op: str, a: dict, ins: list[str]) -> Shape:
        parts = [self.shape[i] for i in (ins[2::3] if op == "QLinearConcat" else ins) if i]
        ax = a.get("axis", 1) % len(parts[0])
        out = list(parts[0])
        out[ax] = sum(p[ax] for p in parts)
        return tuple(out)


RESHAPING = {"Pad", "Resize", "Upsample", "Slice", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
             "ReduceL2", "ReduceLogSumExp"}
ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "LeakyRelu",
               "Max", "Min", "Pow", "Sqrt", "Exp", "Erf", "Gelu", "FastGelu", "QuickGelu", "Softmax", "LogSoftmax",
               "BatchNormalization", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax", "Neg", "Abs", "Identity",
               "Cast", "Dropout", "ReorderInput", "ReorderOutput", "Where", "Equal", "Not", "Floor", "Ceil", "Round",
               "PRelu", "Elu", "Selu", "Softplus", "Mish", "Swish", "LayerNormalization", "InstanceNormalization"}
