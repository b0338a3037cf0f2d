"""Isolated timing: one fresh process per sample, ties when spreads overlap, the same ranking in bursts."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgemap.errors import EdgemapError
from edgemap.runtime.isolated import (IsolatedResult, Timing, choose, compare, same_ranking, speedup_line,
                                      time_in_bursts, time_isolated)


def matmul_chain(path, depth, width=256):
    """y = x @ W, `depth` times: cost grows with depth, so the ranking of two depths is known."""
    w = numpy_helper.from_array(np.eye(width, dtype=np.float32) * 0.5, "w")
    nodes, prev = [], "x"
    for i in range(depth):
        nodes.append(helper.make_node("MatMul", [prev, "w"], [f"h{i}"]))
        prev = f"h{i}"
    nodes.append(helper.make_node("Identity", [prev], ["y"]))
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", width])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def t(name, *ms, threads=1):
    return Timing(name, threads, tuple(ms))


def test_overlapping_spreads_are_a_tie_and_ties_go_to_the_more_accurate_then_smaller():
    a, b, c = t("a", 1.0, 1.1, 1.2), t("b", 1.15, 1.3, 1.4), t("c", 2.0, 2.1, 2.2)
    assert compare(a, b) == "tie" and compare(a, c) == "faster" and compare(c, a) == "slower"
    assert "a tie (spreads overlap)" in speedup_line(a, b) and speedup_line(a, c).endswith(": faster")
    assert "x1.91 (x1.67-2.20)" in speedup_line(a, c)
    result = IsolatedResult((a, b, c, t("c", 3.0, 3.1, threads=2)), 3, 10)
    assert result.best("c").threads == 1
    assert choose(result) == ["a", "b", "c"]
    assert choose(result, accuracy={"a": 80.0, "b": 81.0, "c": 99.0}) == ["b", "a", "c"]  # c is not tied: last
    assert choose(result, accuracy={"a": 80.0, "b": 80.0}, size={"a": 900, "b": 100}) == ["b", "a", "c"]
    with pytest.raises(EdgemapError, match="no timing for 'd'"):
        result.best("d")


def test_each_model_is_timed_alone_in_its_own_process_and_bursts_rank_them_alike(tmp_path):
    models = {"short": matmul_chain(tmp_path / "short.onnx", 1), "long": matmul_chain(tmp_path / "long.onnx", 40)}
    iso = time_isolated(models, threads=(1, 2), rounds=2, runs=10, warmup=2, batch=8)
    assert len(iso.timings) == 4 and all(len(x.round_ms) == 2 for x in iso.timings)
    assert compare(iso.best("short"), iso.best("long")) == "faster"
    assert choose(iso) == ["short", "long"]
    d = iso.to_dict()
    assert set(d["best"]) == {"short", "long"} and "one fresh process" in d["evidence"]["method"]
    bursts = time_in_bursts(models, threads=1, rounds=2, runs=10, warmup=2, batch=8)
    assert same_ranking(iso, bursts)
    flipped = IsolatedResult((t("short", 9.0), t("long", 1.0)), 1, 10)
    assert not same_ranking(iso, flipped)


def test_bad_requests_are_one_line_errors(tmp_path):
    with pytest.raises(EdgemapError, match="not found"):
        time_isolated({"x": tmp_path / "none.onnx"})
    with pytest.raises(EdgemapError, match="need rounds >= 1"):
        time_isolated({"x": tmp_path / "none.onnx"}, rounds=0)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(EdgemapError, match="timing process failed"):
        time_isolated({"x": tmp_path / "junk.onnx"}, threads=(1,), rounds=1, runs=5)


def test_the_worker_runs_without_torch(tmp_path):
    path = matmul_chain(tmp_path / "m.onnx", 2)
    code = ("import sys, runpy\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('torch', 'safetensors'):\n"
            "            raise ModuleNotFoundError(name)\n"
            "sys.meta_path.insert(0, Block())\n"
            f"sys.argv = ['x', {str(path)!r}, '', '1', '5', '1', '2']\n"
            "runpy.run_module('edgemap.runtime.isolated', run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '"median_ms"' in proc.stdout
