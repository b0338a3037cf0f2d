"""Where an ONNX graph can be cut so that exactly one tensor crosses, and the head/tail models of a cut.

A tensor T is a single-tensor cut when the nodes that compute T (the head) and the nodes that compute
the outputs from T (the tail) share no node that depends on the input: then the head sends T and
nothing else. Nodes that depend only on constants (shape arithmetic, Constant nodes) may be needed by
both halves; the extractor copies them into each. In a residual network the cuts fall between blocks:
inside a block the skip tensor crosses too. Works on the graph alone, so zoo checkpoints (exported
first) and user ONNX files are handled alike. numpy + onnx only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

from edgemap.errors import EdgemapError

INPUT_POINT = "input"    # all on the server: the input crosses
DEVICE_POINT = "device"  # all on the device: nothing crosses


@dataclass(frozen=True)
class CutPoint:
    """One single-tensor cut: `tensor` crosses; `head_nodes` of the graph's nodes run before it."""

    name: str          # stable label: "c<k>" in topological order
    tensor: str        # the crossing tensor's name in the whole graph
    producer_op: str   # op type that produces it (Relu, MaxPool, Add, ...)
    head_nodes: int    # nodes computing it (constant-only nodes not counted)
    tail_nodes: int


class Graph:
    """Producer/consumer maps of a single-input ONNX graph, with constant-only nodes told apart."""

    def __init__(self, model: onnx.ModelProto, where: str = "model") -> None:
        g = model.graph
        inits = {i.name for i in g.initializer}
        inputs = [i.name for i in g.input if i.name not in inits]
        if len(inputs) != 1:
            raise EdgemapError(f"{where}: split handles single-input models; this one has {len(inputs)} inputs")
        self.input = inputs[0]
        self.outputs = [o.name for o in g.output]
        self.nodes = list(g.node)
        self.producer = {t: i for i, n in enumerate(self.nodes) for t in n.output if t}
        self.dynamic = self._dynamic_nodes()

    def _dynamic_nodes(self) -> set[int]:
        """Indices of nodes that depend on the model input (the rest compute constants)."""
        live_tensors, live = {self.input}, set()
        for i, n in enumerate(self.nodes):  # ONNX nodes are stored in topological order
            if any(t in live_tensors for t in n.input) or _subgraph_inputs(n) & live_tensors:
                live.add(i)
                live_tensors.update(t for t in n.output if t)
        return live

    def ancestors(self, targets: list[str], stop: str | None = None) -> tuple[set[int], bool]:
        """Dynamic nodes needed to compute `targets` (not looking past `stop`), and whether the model input is needed."""
        seen: set[int] = set()
        needs_input = False
        todo = list(targets)
        while todo:
            t = todo.pop()
            if t == stop:
                continue
            if t == self.input:
                needs_input = True
                continue
            i = self.producer.get(t)
            if i is None or i in seen or i not in self.dynamic:
                continue
            seen.add(i)
            todo.extend(x for x in self.nodes[i].input if x)
            todo.extend(_subgraph_inputs(self.nodes[i]))
        return seen, needs_input


def _subgraph_inputs(node: onnx.NodeProto) -> set[str]:
    """Outer-scope names a node's subgraphs (If/Loop/Scan bodies) read: they count as its inputs."""
    names: set[str] = set()
    for attr in node.attribute:
        for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            produced = {t for n in sub.node for t in n.output} | {i.name for i in sub.input} | {i.name for i in sub.initializer}
            for n in sub.node:
                names.update(t for t in n.input if t and t not in produced)
                names |= _subgraph_inputs(n) - produced
    return names


def find_cuts(model: onnx.ModelProto, where: str = "model") -> list[CutPoint]:
    """Every single-tensor cut of `model`, in topological order (the input and output are not cuts)."""
    graph = Graph(model, where)
    whole, _ = graph.ancestors(graph.outputs)
    cuts = []
    for i in sorted(graph.dynamic):
        for t in graph.nodes[i].output:
            if not t or t in graph.outputs:
                continue
            head, _ = graph.ancestors([t])
            tail, tail_needs_input = graph.ancestors(graph.outputs, stop=t)
            if tail_needs_input or head & tail or not tail or (head | tail) != whole:
                continue
            cuts.append(CutPoint(f"c{len(cuts) + 1}", t, graph.nodes[i].op_type, len(head), len(tail)))
    return cuts


def require_cuts(model: onnx.ModelProto, where: str = "model") -> list[CutPoint]:
    """find_cuts, refusing a model that has none."""
    cuts = find_cuts(model, where)
    if not cuts:
        raise EdgemapError(f"{where}: no point where a single tensor crosses from the first layers to the rest; "
                           f"this model can run all on the device or all on the server, not split")
    return cuts


def cut_by_name(cuts: list[CutPoint], name: str) -> CutPoint:
    """The cut named `name` (its label c<k> or its tensor name), or a one-line error listing the cuts."""
    for c in cuts:
        if name in (c.name, c.tensor):
            return c
    raise EdgemapError(f"unknown split point {name!r}; this model's split points: "
                       f"{', '.join(c.name + '=' + c.tensor for c in cuts)}")


def extract(model: onnx.ModelProto, cut: CutPoint) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """Head (input -> crossing tensor) and tail (crossing tensor -> outputs) as two ONNX models."""
    from onnx.utils import Extractor

    graph = Graph(model)
    try:
        ex = Extractor(model)
        head = ex.extract_model([graph.input], [cut.tensor])
        tail = ex.extract_model([cut.tensor], graph.outputs)
    except Exception as exc:  # onnx raises several types for graphs it cannot extract from
        raise EdgemapError(f"cannot extract the halves at {cut.name} ({cut.tensor}): {str(exc).splitlines()[0][:200]}") from None
    for part in (head, tail):
        part.ir_version = model.ir_version
        part.graph.name = f"{model.graph.name or 'model'}_{'head' if part is head else 'tail'}_{cut.name}"
    return head, tail


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """An ONNX model with shapes inferred (the extractor needs the crossing tensor's type)."""
    path = Path(path)
    if not path.is_file():
        raise EdgemapError(f"{path}: model file not found")
    try:
        model = onnx.load(str(path))
        return onnx.shape_inference.infer_shapes(model)
    except Exception as exc:
        raise EdgemapError(f"{path}: not a readable ONNX model ({str(exc).splitlines()[0][:200]})") from None
