"""export_onnx: the exporter's per-node debug metadata (stack traces with this machine's paths) stays out of the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from edgemap.convert.onnx_export import export_onnx, strip_exporter_metadata
from edgemap.models.zoo import build


def _debug_keys(model: onnx.ModelProto) -> set[str]:
    return {p.key for n in model.graph.node for p in n.metadata_props}


def test_export_drops_stack_traces_unless_asked_and_runs_the_same(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = build("resnet9s").eval()
    lean = export_onnx(net, tmp_path / "lean.onnx")
    debug = export_onnx(net, tmp_path / "debug.onnx", debug_metadata=True)

    assert any(k.startswith("pkg.torch.onnx.") for k in _debug_keys(onnx.load(str(debug))))
    assert _debug_keys(onnx.load(str(lean))) == set()
    project = str(Path(__file__).resolve().parents[2]).encode()
    assert project in debug.read_bytes() and project not in lean.read_bytes()  # no build-machine paths shipped
    assert lean.stat().st_size < debug.stat().st_size

    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    run = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (lean, debug)]
    outs = [s.run(None, {s.get_inputs()[0].name: x})[0] for s in run]
    np.testing.assert_array_equal(outs[0], outs[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["debug.onnx", "lean.onnx"]


def test_strip_keeps_other_metadata_and_reaches_subgraphs() -> None:
    from onnx import helper

    inner = helper.make_node("Identity", ["a"], ["b"])
    inner.metadata_props.add(key="pkg.torch.onnx.stack_trace", value="File /x.py")
    branch = helper.make_graph([inner], "branch", [], [helper.make_tensor_value_info("b", onnx.TensorProto.FLOAT, [1])])
    outer = helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)
    outer.metadata_props.add(key="namespace", value="Net/If")
    outer.metadata_props.add(key="owner", value="kept")
    graph = helper.make_graph([outer], "g", [helper.make_tensor_value_info("c", onnx.TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    model = helper.make_model(graph)
    model.metadata_props.add(key="pkg.torch.onnx.note", value="model-level, kept")

    assert strip_exporter_metadata(model) == 3  # namespace + the two branches' stack traces
    assert [(p.key, p.value) for p in model.graph.node[0].metadata_props] == [("owner", "kept")]
    assert all(not a.g.node[0].metadata_props for a in model.graph.node[0].attribute)
    assert [p.key for p in model.metadata_props] == ["pkg.torch.onnx.note"]
