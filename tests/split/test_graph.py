"""Single-tensor cuts on ONNX graphs, and head + tail equal to the whole model bit for bit."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from edgemap.errors import EdgemapError
from edgemap.split.graph import cut_by_name, extract, find_cuts, load_onnx, require_cuts


def _run(model, feeds: dict) -> np.ndarray:  # noqa: ANN001 - ModelProto
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def test_chain_cuts_after_every_node_and_halves_are_exact(tmp_path, helpers):
    model = load_onnx(helpers.chain_model(tmp_path / "m.onnx"))
    cuts = find_cuts(model)
    assert [c.tensor for c in cuts] == ["c1", "r1", "p1", "c2", "r2", "gap", "flat"]
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(np.float32)
    whole = _run(model, {"image": x})
    for cut in cuts:
        head, tail = extract(model, cut)
        assert np.array_equal(_run(tail, {cut.tensor: _run(head, {"image": x})}), whole), cut


def test_residual_block_is_not_cut_inside(tmp_path, helpers):
    cuts = find_cuts(load_onnx(helpers.residual_model(tmp_path / "r.onnx")))
    tensors = [c.tensor for c in cuts]
    assert "s" in tensors and "sum" in tensors and "out" in tensors
    assert not {"b1", "b1r", "b2"} & set(tensors)  # the skip tensor `s` crosses too inside the block


def test_branch_and_concat_blocks_are_cut_only_between_blocks(tmp_path, helpers):
    model = load_onnx(helpers.inception_model(tmp_path / "i.onnx"))
    cuts = find_cuts(model)
    # inside the Inception block the stem output `s` feeds three branches; inside the dense block `pool` is
    # concatenated with what is computed from it: neither block is cut inside
    assert [c.tensor for c in cuts] == ["stem", "s", "cat", "inc", "pool", "dense", "gap", "flat"]
    assert [c.producer_op for c in cuts][2] == "Concat"
    x = np.random.default_rng(1).standard_normal((4, 3, 8, 8)).astype(np.float32)
    whole = _run(model, {"image": x})
    for cut in cuts:
        head, tail = extract(model, cut)
        assert [i.name for i in tail.graph.input] == [cut.tensor]
        assert np.array_equal(_run(tail, {cut.tensor: _run(head, {"image": x})}), whole), cut


def test_model_without_single_tensor_cut_is_refused(tmp_path, helpers):
    model = load_onnx(helpers.two_branch_model(tmp_path / "b.onnx"))
    assert find_cuts(model) == []
    with pytest.raises(EdgemapError, match="no point where a single tensor crosses"):
        require_cuts(model, "b.onnx")


def test_unknown_split_point_lists_the_real_ones(tmp_path, helpers):
    cuts = find_cuts(load_onnx(helpers.chain_model(tmp_path / "m.onnx")))
    assert cut_by_name(cuts, "c3").tensor == "p1" and cut_by_name(cuts, "p1").name == "c3"
    with pytest.raises(EdgemapError, match=r"unknown split point 'c99'.*c1=c1"):
        cut_by_name(cuts, "c99")


def test_unreadable_model_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(EdgemapError, match="not a readable ONNX model"):
        load_onnx(bad)
