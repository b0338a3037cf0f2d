"""Peers: each tool's default INT8 of a tiny CNN is built, runs in its backend, is scored and timed like edgemap's."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from edgemap.errors import EdgemapError
from edgemap.peers.build import BUILDERS, build_peers
from edgemap.peers.compare import accuracy_of, compare_with_peers, markdown_table


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    """The zoo's tiny CNN (seed-0 weights) as ONNX, and inputs labelled by its own FP32 predictions."""
    from edgemap.convert.onnx_export import export_onnx
    from edgemap.models import zoo

    torch.manual_seed(0)
    model = zoo.build("tiny").eval()
    path = export_onnx(model, tmp_path_factory.mktemp("peers") / "tiny.onnx")
    x = np.random.default_rng(0).standard_normal((96, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).argmax(1).numpy()
    return path, x, y


def test_every_peer_is_int8_runs_in_its_backend_and_mostly_agrees_with_fp32(tiny_onnx, tmp_path):
    path, x, y = tiny_onnx
    peers = build_peers(path, x[:32], tmp_path)
    assert set(peers) == set(BUILDERS)
    for name in ("ort_olive_int8", "nncf_ort_int8"):
        ops = {n.op_type for n in onnx.load(str(peers[name].path)).graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops, name
    olive = onnx.load(str(peers["ort_olive_int8"].path))
    scales = [i for i in olive.graph.initializer if i.name.endswith("_scale")]
    assert scales and all(int(np.prod(i.dims)) == 1 for i in scales)  # per-tensor: one scale per tensor
    xml = peers["nncf_openvino_int8"].path
    assert xml.suffix == ".xml" and xml.with_suffix(".bin").is_file() and "FakeQuantize" in xml.read_text()
    assert accuracy_of(path, "onnxruntime", x, y) == 100.0
    for p in peers.values():
        assert accuracy_of(p.path, p.backend, x, y) >= 75.0, p.name  # INT8 of the same net: mostly the same answers


def test_compare_scores_and_times_everything_alike_and_names_the_best_peer(tiny_onnx, tmp_path):
    path, x, y = tiny_onnx
    report = compare_with_peers(path, x[:16], x, y, tmp_path, candidates={"edgemap_fp32_copy": (path, "onnxruntime")},
                                peers=("ort_olive_int8",), max_drop=100.0, threads=(1,), rounds=2, runs=10)
    rows = {r["name"]: r for r in report["rows"]}
    assert set(rows) == {"fp32", "edgemap_fp32_copy", "ort_olive_int8"} and report["best_peer"] == "ort_olive_int8"
    mine = rows["edgemap_fp32_copy"]
    assert mine["accuracy"] == 100.0 and mine["drop"] == 0.0 and mine["vs_best_peer"]["verdict"] in ("faster", "slower", "tie")
    assert mine["vs_best_peer"]["line"].startswith("edgemap_fp32_copy (")
    assert "one fresh process" in report["timing"]["evidence"]["method"]
    assert isinstance(report["bursts"]["same_ranking"], bool) and "one process" in report["bursts"]["timing"]["evidence"]["method"]
    table = markdown_table(report)
    assert "| ort_olive_int8 | peer | onnxruntime |" in table and "(best peer)" in table


def test_bad_requests_are_one_line_errors(tiny_onnx, tmp_path):
    path, x, _ = tiny_onnx
    with pytest.raises(EdgemapError, match="unknown peer"):
        build_peers(path, x[:4], tmp_path, ("tensorrt",))
    with pytest.raises(EdgemapError, match="float32 batch"):
        build_peers(path, x[:4].astype(np.float64), tmp_path)
    with pytest.raises(EdgemapError, match="not found"):
        build_peers(tmp_path / "none.onnx", x[:4], tmp_path)
    with pytest.raises(EdgemapError, match="could not be built"):
        build_peers(path, x[:4, :1], tmp_path, ("ort_olive_int8",))  # 1 channel for a 3-channel model
