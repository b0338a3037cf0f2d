"""ONNX classifier graph -> torch.fx GraphModule built from real nn layers, ONNX weights loaded.

Why not onnx2torch: it hard-requires torchvision, which does not import beside this torch. And
Torch-Pruning needs exactly what this builds: real nn.Conv2d / nn.Linear / nn.BatchNorm2d modules
and a traceable forward whose reshapes follow the channel counts (a flatten before the classifier
is emitted as torch.flatten, never as a reshape to a hard-coded width).

How: constant subgraphs are folded with onnx's numpy reference evaluator; shapes come from ONNX
shape inference; shape-computing inputs (Reshape's target, Squeeze axes, ...) are read statically,
so the Shape/Gather/Concat chains exporters emit for `x.view(x.size(0), -1)` drop out. Each
remaining node becomes one fx call (ops in edgemap.models.onnx_to_torch_ops). A node that cannot
be converted raises EdgemapError naming its operator type and node name.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from edgemap.errors import EdgemapError

# inputs read statically (from constants or inferred shapes): not part of the data flow
STATIC_INPUTS = {"Reshape": {1}, "Squeeze": {1}, "Unsqueeze": {1}, "ReduceMean": {1}, "ReduceSum": {1},
                 "ReduceMax": {1}, "Pad": {1, 2, 3}, "Clip": {1, 2}, "Expand": {1}}
_NO_FOLD = {"Shape", "Size", "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike"}


class ConversionError(EdgemapError):
    """A graph that cannot be turned into torch; the message names the node."""


def onnx_to_torch(source: str | Path | Any) -> fx.GraphModule:
    """Convert an ONNX model (path or onnx.ModelProto) to a GraphModule in eval mode.

    Raises EdgemapError naming the file, the operator type and the node when a node is not supported.
    """
    import onnx

    where = str(source) if isinstance(source, (str, Path)) else (source.graph.name or "ONNX model")
    model = _load(source) if isinstance(source, (str, Path)) else source
    try:
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # inference errors: report, the graph itself may still be usable
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:200]
        raise EdgemapError(f"{where}: ONNX shape inference failed ({first})") from None
    builder = GraphBuilder(model, where)
    return builder.build()


def _load(path: str | Path) -> Any:
    import onnx

    from edgemap.runtime.formats import check_onnx_file

    check_onnx_file(path)
    m = onnx.load(str(path))
    return m


class GraphBuilder:
    """Walks the ONNX graph once, emitting fx nodes; handlers live in onnx_to_torch_ops."""

    def __init__(self, model: Any, where: str) -> None:
        from onnx import numpy_helper

        self.model, self.where = model, where
        g = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.root = nn.Module()
        self.graph = fx.Graph()
        self.env: dict[str, fx.Node] = {}
        self.consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        self.shapes = _shapes(g)
        self._probed: dict[str, list[int | None]] | None = None
        self.used_names: set[str] = set()
        self.skip: set[int] = set()  # ids of nodes already emitted by a fused neighbour
        self.consumers: dict[str, list[Any]] = {}
        for node in g.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.uses = Counter(n for node in g.node for n in node.input)
        self.uses.update(o.name for o in g.output)

    # --- the walk -------------------------------------------------------------------------------
    def build(self) -> fx.GraphModule:
        """Emit every needed node; returns the GraphModule in eval mode."""
        from edgemap.models import onnx_to_torch_elementwise, onnx_to_torch_ops  # noqa: F401 - register the handlers
        from edgemap.models.onnx_to_torch_registry import HANDLERS

        g = self.model.graph
        for inp in g.input:
            if inp.name not in self.consts:
                self.env[inp.name] = self.graph.placeholder(self._unique(inp.name, "input"))
        self._fold_constants()
        needed = self._needed()
        for node in g.node:
            if id(node) not in needed or id(node) in self.skip or all(o in self.consts for o in node.output if o):
                continue
            handler = HANDLERS.get(node.op_type)
            if handler is None or node.domain not in ("", "ai.onnx"):
                raise self.error(node, "operator not supported by the converter")
            out = handler(self, node)
            if out is not None:
                self.env[node.output[0]] = out
        outs = [self.value(o.name) for o in g.output]
        self.graph.output(outs[0] if len(outs) == 1 else tuple(outs))
        gm = fx.GraphModule(self.root, self.graph, class_name="ConvertedOnnx")
        gm.graph.lint()
        return gm.eval()

    def _fold_constants(self) -> None:
        """Evaluate every node whose inputs are all constants (Constant, Cast of constants, ...)."""
        for node in self.model.graph.node:
            if node.op_type in _NO_FOLD or not all(i == "" or i in self.consts for i in node.input):
                continue
            for name, value in zip(node.output, _evaluate(node, self.consts, self.model.opset_import)):
                self.consts[name] = np.asarray(value)

    def _needed(self) -> set[int]:
        """Nodes on the data path to an output (statically read inputs do not count)."""
        producer = {o: n for n in self.model.graph.node for o in n.output}
        needed: set[int] = set()
        stack = [o.name for o in self.model.graph.output]
        while stack:
            node = producer.get(stack.pop())
            if node is None or id(node) in needed:
                continue
            needed.add(id(node))
            static = STATIC_INPUTS.get(node.op_type, set())
            stack.extend(n for i, n in enumerate(node.input) if n and i not in static and n not in self.consts)
        return needed

    # --- helpers the handlers use ---------------------------------------------------------------
    def error(self, node: Any, reason: str) -> ConversionError:
        """The one-line error for a node that stops the conversion."""
        return ConversionError(f"{self.where}: cannot convert {node.op_type} node {node.name or node.output[0]!r} "
                               f"to PyTorch: {reason}")

    def const(self, name: str) -> np.ndarray | None:
        """The constant value of tensor `name`, or None when it is computed at run time."""
        return self.consts.get(name) if name else None

    def value(self, name: str) -> Any:
        """fx node for a run-time tensor; a constant becomes a float (scalar) or a registered buffer."""
        if name in self.env:
            return self.env[name]
        if name in self.consts:
            arr = self.consts[name]
            if arr.size == 1 and arr.ndim == 0 and arr.dtype.kind == "f":
                return float(arr)
            buf = self._unique(name, "const")
            self.root.register_buffer(buf, torch.from_numpy(np.array(arr, copy=True)))
            node = self.graph.get_attr(buf)
            self.env[name] = node
            return node
        raise EdgemapError(f"{self.where}: tensor {name!r} is used before it is produced")

    def shape(self, name: str) -> list[int | None] | None:
        """Inferred shape of a tensor (None for a batch-dependent axis), or None when unknown.

        Where ONNX shape inference leaves axes unknown (shape-computing chains it cannot follow),
        the model is run once at batch 1 and 2 and the axes that stay put are taken as static."""
        if name in self.consts:
            return list(self.consts[name].shape)
        shape = self.shapes.get(name)
        if shape is None or None in shape[1:]:
            if self._probed is None:
                self._probed = _probe_shapes(self.model)
            shape = self._probed.get(name, shape)
        return shape

    def call_module(self, hint: str, module: nn.Module, *args: Any) -> fx.Node:
        """Register `module` under a name derived from `hint` and call it."""
        name = self._unique(hint, "layer")
        self.root.add_module(name, module)
        return self.graph.call_module(name, tuple(args))

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> fx.Node:
        """Call a torch function in the graph."""
        return self.graph.call_function(fn, tuple(args), kwargs)

    def only_consumer(self, name: str) -> Any | None:
        """The single node that reads tensor `name`, if exactly one does and it is not a graph output."""
        users = self.consumers.get(name, [])
        return users[0] if len(users) == 1 and self.uses[name] == 1 else None

    def _unique(self, hint: str, default: str) -> str:
        base = re.sub(r"\W", "_", hint.removesuffix(".weight")).strip("_") or default
        base = base if base[0].isalpha() else f"{default}_{base}"
        name, i = base, 1
        while name in self.used_names or hasattr(nn.Module, name):
            name, i = f"{base}_{i}", i + 1
        self.used_names.add(name)
        return name


def _shapes(graph: Any) -> dict[str, list[int | None]]:
    out = {}
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        t = vi.type.tensor_type
        if t.HasField("shape"):
            out[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    return out


def _probe_shapes(model: Any) -> dict[str, list[int | None]]:
    """Every tensor's shape from onnxruntime runs at batch 1 and 2 (axes that change are None)."""
    import onnx
    import onnxruntime as ort

    m = onnx.ModelProto()
    m.CopyFrom(model)
    known = {o.name for o in m.graph.output} | {i.name for i in m.graph.initializer}
    for node in m.graph.node:
        m.graph.output.extend(onnx.ValueInfoProto(name=o) for o in node.output if o and o not in known)
    inp = next(i for i in m.graph.input if i.name not in known)
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
    if None in dims[1:]:
        return {}
    try:
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        runs = [sess.run(None, {inp.name: np.zeros((n, *dims[1:]), np.float32)}) for n in (1, 2)]
    except Exception:  # a model onnxruntime cannot run gives no extra shape facts
        return {}
    return {n: [a if a == b else None for a, b in zip(r1.shape, r2.shape)] if r1.ndim == r2.ndim else None
            for n, r1, r2 in zip(names, *runs)}


def _evaluate(node: Any, consts: dict[str, np.ndarray], opsets: Any) -> list[np.ndarray]:
    """Run one node on constant inputs with onnx's numpy reference implementation."""
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    ins = [n for n in node.input if n]
    graph = helper.make_graph([node], "fold", [helper.make_tensor_value_info(n, TensorProto.UNDEFINED, None) for n in ins],
                              [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in node.output if o])
    model = helper.make_model(graph, opset_imports=list(opsets))
    try:
        return ReferenceEvaluator(model).run(None, {n: consts[n] for n in ins})
    except Exception as exc:  # the reference evaluator raises many types
        raise EdgemapError(f"cannot fold constant {node.op_type} node {node.name!r}: {exc.__class__.__name__}: "
                           f"{str(exc).splitlines()[0][:200] if str(exc) else ''}") from None
