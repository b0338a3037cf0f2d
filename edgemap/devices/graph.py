"""What an ONNX model costs, read from the graph alone (onnx + shape inference; any user model).

For each node: kind (conv, depthwise, gemm, memory, or free), compute data type, MACs and the
bytes it moves. For the whole graph: weight bytes and the peak of simultaneously live
activations in the graph's topological order.

Runtime behaviour the figures follow (ONNX Runtime's CPU provider, and most edge runtimes):
- QDQ models run as integer kernels: a DequantizeLinear feeding a Conv/Gemm and the
  QuantizeLinear after it are fused into the layer, so their tensors are stored as 8-bit;
- an activation (Relu, Clip, ...) right after a Conv/Gemm is fused into it;
- Reshape/Flatten/Squeeze/Unsqueeze/Identity are views; nodes whose inputs are all constant
  are folded when the model is loaded. All of these are "free": no time, no extra buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgemap.errors import EdgemapError

# op type -> index of its weight input; integer ops compute in int8 whatever their inputs say
WEIGHTED = {"Conv": 1, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1, "QLinearConv": 3, "ConvInteger": 1,
            "MatMulInteger": 1, "QLinearMatMul": 3}
INTEGER_OPS = {"QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul"}
VIEWS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"}
FUSED_ACTIVATIONS = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "Tanh", "HardSwish"}
_ELEM_SIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}
_SIZE_DTYPE = {1: "int8", 2: "fp16", 4: "fp32"}


@dataclass(frozen=True)
class Layer:
    """One node's cost: kind is conv, depthwise, gemm, memory or free."""

    name: str
    op_type: str
    kind: str
    dtype: str
    macs: int
    bytes_moved: int
    weight_bytes: int


@dataclass(frozen=True)
class GraphCost:
    """The cost of one inference of a model at a fixed batch size."""

    path: str
    batch: int
    layers: tuple[Layer, ...]
    weight_bytes: int
    peak_activation_bytes: int
    file_bytes: int
    warnings: tuple[str, ...] = field(default=())

    @property
    def macs(self) -> int:
        """Multiply-accumulates of all layers."""
        return sum(layer.macs for layer in self.layers)

    @property
    def precision(self) -> str:
        """The data type that does most of the arithmetic (fp32 for a graph with no MACs)."""
        by: dict[str, int] = {}
        for layer in self.layers:
            by[layer.dtype] = by.get(layer.dtype, 0) + layer.macs
        return max(by, key=lambda d: by[d]) if any(by.values()) else "fp32"

    @property
    def dtypes(self) -> tuple[str, ...]:
        """Data types of the layers that do multiply-accumulates (what a device must support)."""
        return tuple(sorted({layer.dtype for layer in self.layers if layer.macs > 0})) or ("fp32",)


def analyse(path: str | Path, batch: int = 1) -> GraphCost:
    """Analyse an ONNX file: per-layer MACs, bytes and dtype, weights and peak live activations."""
    path = Path(path)
    if not path.is_file():
        raise EdgemapError(f"{path}: model file not found")
    model = _load_with_shapes(path, batch)
    g = _Graph(model.graph)
    layers = tuple(g.layer(i) for i in range(len(g.nodes)))
    return GraphCost(str(path), batch, layers, g.weight_bytes(), g.peak_activation_bytes(), path.stat().st_size,
                     tuple(g.warnings))


def _load_with_shapes(path: Path, batch: int):  # noqa: ANN202 - onnx.ModelProto
    """Load the model, pin symbolic batch axes to `batch`, and run shape inference."""
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and others for non-ONNX files
        raise EdgemapError(f"{path}: not a readable ONNX model ({exc.__class__.__name__})") from None
    inits = {t.name for t in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        for axis, dim in enumerate(inp.type.tensor_type.shape.dim):
            if dim.dim_value > 0:
                continue
            if axis != 0:
                raise EdgemapError(f"{path}: input {inp.name!r} has a symbolic size at axis {axis}; "
                                   "estimates need fixed shapes except the batch axis")
            dim.dim_value = batch
    del model.graph.value_info[:]  # stale entries (e.g. left by an FP16 conversion) would block inference
    _sort_topologically(model.graph, inits | {i.name for i in model.graph.input})
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:  # inference errors come as several onnx exception types
        raise EdgemapError(f"{path}: ONNX shape inference failed ({str(exc).splitlines()[0][:200]})") from None


def _sort_topologically(graph, available: set[str]) -> None:  # noqa: ANN001 - onnx.GraphProto
    """Reorder nodes so each comes after its inputs' producers (some converters append nodes out of order)."""
    pending, ordered, ready = list(graph.node), [], set(available) | {""}
    while pending:
        rest = [n for n in pending if not all(t in ready for t in n.input)]
        done = [n for n in pending if all(t in ready for t in n.input)]
        if not done:
            raise EdgemapError(f"graph has a cycle or an undefined input near node {rest[0].name or rest[0].op_type!r}")
        for n in done:
            ready.update(n.output)
        ordered += done
        pending = rest
    copies = [type(n)() for n in ordered]
    for c, n in zip(copies, ordered):
        c.CopyFrom(n)
    del graph.node[:]
    graph.node.extend(copies)


class _Graph:
    """Index of one ONNX graph: shapes, constants, producers/consumers, and activation buffers."""

    def __init__(self, graph) -> None:  # noqa: ANN001 - onnx.GraphProto
        from onnx import numpy_helper

        self.nodes = list(graph.node)
        self.warnings: list[str] = []
        self.shape: dict[str, tuple[int, ...] | None] = {}
        self.elem: dict[str, int] = {}
        for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
            tt = vi.type.tensor_type
            dims = tuple(d.dim_value if d.dim_value > 0 else -1 for d in tt.shape.dim) if tt.HasField("shape") else None
            self.shape[vi.name] = None if dims is None or -1 in dims else dims
            self.elem[vi.name] = tt.elem_type
        self.const_bytes: dict[str, int] = {}
        for t in graph.initializer:
            self.const_bytes[t.name] = int(numpy_helper.to_array(t).nbytes)
            self.shape[t.name], self.elem[t.name] = tuple(t.dims), t.data_type
        self.graph_inputs = [i.name for i in graph.input if i.name not in self.const_bytes]
        self.graph_outputs = [o.name for o in graph.output]
        self.producer = {o: i for i, n in enumerate(self.nodes) for o in n.output if o}
        self.consumers: dict[str, list[int]] = {}
        for i, n in enumerate(self.nodes):
            for t in n.input:
                if t:
                    self.consumers.setdefault(t, []).append(i)
        self._fold_constants()
        self.free = [self._is_free(i) for i in range(len(self.nodes))]
        self.parent: dict[str, str] = {}
        self._alias_buffers()

    # -- constants and free nodes ------------------------------------------------------------
    def _fold_constants(self) -> None:
        """Constant nodes and nodes fed only by constants are folded at load time."""
        for n in self.nodes:
            ins = [t for t in n.input if t]
            if n.op_type == "Constant" or (ins and all(t in self.const_bytes for t in ins)):
                total = sum(self.const_bytes.get(t, 0) for t in ins)
                for o in n.output:
                    self.const_bytes[o] = total if ins else self._numel(o) * self._elem_size(o)

    def _is_free(self, i: int) -> bool:
        n = self.nodes[i]
        if all(o in self.const_bytes for o in n.output) or n.op_type in VIEWS:
            return True
        if n.op_type == "DequantizeLinear":  # fused into its consumer as an integer kernel
            return True
        src = self.producer.get(n.input[0])
        sole = src is not None and self.consumers.get(n.input[0], []) == [i]
        if n.op_type == "QuantizeLinear":  # the producer writes 8-bit output directly
            return sole and self.nodes[src].op_type not in VIEWS
        if n.op_type in FUSED_ACTIVATIONS:
            return sole and self.nodes[src].op_type in (set(WEIGHTED) | {"Add"})
        return False

    # -- activation buffers ------------------------------------------------------------------
    def _find(self, t: str) -> str:
        while self.parent.get(t, t) != t:
            t = self.parent[t]
        return t

    def _alias_buffers(self) -> None:
        """Tensors joined by a free node share one buffer (a view, a fused Q/DQ or activation)."""
        for i, n in enumerate(self.nodes):
            if self.free[i] and n.input and n.input[0] not in self.const_bytes:
                for o in n.output:
                    if o and o not in self.const_bytes:
                        self.parent[self._find(o)] = self._find(n.input[0])

    def _numel(self, t: str) -> int:
        shape = self.shape.get(t)
        if shape is None:
            self.warnings.append(f"shape of {t!r} unknown; counted as empty")
            return 0
        out = 1
        for d in shape:
            out *= d
        return out

    def _elem_size(self, t: str) -> int:
        return _ELEM_SIZE.get(self.elem.get(t, 1), 4)

    def buffer_sizes(self) -> dict[str, int]:
        """Bytes of each activation buffer: its largest tensor at the smallest element size in the group."""
        numel: dict[str, int] = {}
        elsize: dict[str, int] = {}
        tensors = set(self.graph_inputs) | {o for n in self.nodes for o in n.output if o}
        for t in tensors - set(self.const_bytes):
            root = self._find(t)
            numel[root] = max(numel.get(root, 0), self._numel(t))
            elsize[root] = min(elsize.get(root, 8), self._elem_size(t))
        return {r: numel[r] * elsize[r] for r in numel}

    def activation_bytes(self, t: str, sizes: dict[str, int]) -> int:
        """Bytes a node reads or writes for tensor `t` (constants count as weights, not here)."""
        return 0 if t in self.const_bytes or not t else sizes.get(self._find(t), 0)

    # -- per-layer cost ----------------------------------------------------------------------
    def layer(self, i: int) -> Layer:
        """Cost of node i."""
        n = self.nodes[i]
        name = n.name or f"{n.op_type}_{i}"
        if self.free[i]:
            return Layer(name, n.op_type, "free", "fp32", 0, 0, 0)
        sizes = self._sizes()
        act = sum(self.activation_bytes(t, sizes) for t in list(n.input) + list(n.output))
        weights = sum(self.const_bytes.get(t, 0) for t in n.input if t)
        out_size = self.activation_bytes(n.output[0], sizes) / max(1, self._numel(n.output[0]))
        dtype = _SIZE_DTYPE.get(int(round(out_size)) or 4, "fp32")
        if n.op_type not in WEIGHTED:
            return Layer(name, n.op_type, "memory", dtype, 0, act + weights, weights)
        kind, macs = self._macs(n)
        return Layer(name, n.op_type, kind, self._compute_dtype(n), macs, act + weights, weights)

    def _sizes(self) -> dict[str, int]:
        if not hasattr(self, "_size_cache"):
            self._size_cache = self.buffer_sizes()
        return self._size_cache

    def _compute_dtype(self, n) -> str:  # noqa: ANN001 - onnx.NodeProto
        """int8 for integer ops and QDQ-fed layers, else the data type of the layer's input."""
        if n.op_type in INTEGER_OPS:
            return "int8"
        w = n.input[WEIGHTED[n.op_type]]
        for t in (n.input[0], w):
            src = self.producer.get(t)
            if src is not None and self.nodes[src].op_type == "DequantizeLinear":
                return "int8" if self._elem_size(self.nodes[src].input[0]) == 1 else "fp32"
        return {2: "fp16", 1: "int8"}.get(self._elem_size(n.input[0]), "fp32")

    def _macs(self, n) -> tuple[str, int]:  # noqa: ANN001 - onnx.NodeProto
        """(kind, MACs) of a weighted node, from its output and weight shapes."""
        w_shape = self.shape.get(n.input[WEIGHTED[n.op_type]])
        out = self._numel(n.output[0])
        if w_shape is None:
            self.warnings.append(f"weight shape of {n.name or n.op_type!r} unknown; MACs counted as 0")
            return "gemm", 0
        if "Conv" in n.op_type:
            group = next((a.i for a in n.attribute if a.name == "group"), 1)
            per_out = 1
            for d in w_shape[1:]:
                per_out *= d
            if n.op_type == "ConvTranspose":  # weight is (Cin, Cout/g, k...): each input pixel fans out
                return "conv", self._numel(n.input[0]) * per_out
            return ("depthwise" if group > 1 and w_shape[1] == 1 else "conv"), out * per_out
        trans_b = next((a.i for a in n.attribute if a.name == "transB"), 0)
        k = w_shape[-1] if (n.op_type == "Gemm" and trans_b) else w_shape[-2] if len(w_shape) >= 2 else w_shape[0]
        return "gemm", out * k

    # -- whole graph -------------------------------------------------------------------------
    def weight_bytes(self) -> int:
        """Bytes of all initializers (what the runtime keeps resident)."""
        return sum(v for t, v in self.const_bytes.items() if t not in self.producer)

    def peak_activation_bytes(self) -> int:
        """Largest total of buffers live at once, walking nodes in their (topological) order."""
        sizes = self._sizes()
        end = len(self.nodes)
        first: dict[str, int] = {self._find(t): -1 for t in self.graph_inputs}
        last: dict[str, int] = {self._find(t): end for t in self.graph_outputs if t not in self.const_bytes}
        for i, n in enumerate(self.nodes):
            for o in n.output:
                if o and o not in self.const_bytes:
                    first.setdefault(self._find(o), i)
            for t in n.input:
                if t and t not in self.const_bytes:
                    root = self._find(t)
                    last[root] = max(last.get(root, i), i)
        peak = 0
        for step in range(-1, end):
            live = sum(sizes.get(r, 0) for r, f in first.items() if f <= step <= last.get(r, f))
            peak = max(peak, live)
        return peak
