"""The map's in-process burst check: its finalists timed again in one process, a line only when that ranks them
otherwise than the isolated timing did."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgemap.runtime.isolated import IsolatedResult, Timing
from edgemap.search.robust import burst_check, burst_line, summary_lines


def gemm_stack(path, layers: int):  # noqa: ANN001, ANN201
    """`layers` 384x384 Gemms in a row: the deeper file is the slower one, by a wide margin."""
    w = numpy_helper.from_array(np.full((384, 384), 1e-3, dtype=np.float32), "w")
    names = ["x"] + [f"g{i}" for i in range(layers)]
    nodes = [helper.make_node("Gemm", [a, "w"], [b]) for a, b in zip(names, names[1:])]
    graph = helper.make_graph(nodes, "stack", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 384])],
                              [helper.make_tensor_value_info(names[-1], TensorProto.FLOAT, [4, 384])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def isolated(shallow_ms: float, deep_ms: float) -> IsolatedResult:
    """What the isolated timing 'measured' (given, so that a disagreement can be staged)."""
    return IsolatedResult((Timing("shallow", 1, (shallow_ms,) * 3), Timing("deep", 1, (deep_ms,) * 3),
                           Timing("shallow", 2, (shallow_ms * 2,) * 3)), 3, 50, {"method": "isolated"})


def test_bursts_that_rank_the_finalists_otherwise_are_reported(tmp_path) -> None:  # noqa: ANN001
    rows = {"shallow": ("onnxruntime", gemm_stack(tmp_path / "s.onnx", 1)),
            "deep": ("onnxruntime", gemm_stack(tmp_path / "d.onnx", 30))}
    agree = burst_check(isolated(0.01, 50.0), rows, ["shallow", "deep"])
    assert agree["same_ranking"] and agree["threads"] == 1 and burst_line(agree) is None
    assert agree["burst_order"] == ["shallow", "deep"] and agree["burst_ms"]["deep"]["median_ms"] > 0
    flipped = burst_check(isolated(50.0, 0.01), rows, ["deep", "shallow"])
    assert not flipped["same_ranking"] and flipped["isolated_order"] == ["deep", "shallow"]
    line = burst_line(flipped)
    assert "rank the finalists differently: shallow" in line and "the choice follows the isolated timing" in line
    assert burst_check(isolated(0.01, 50.0), rows, ["shallow"]) is None  # one finalist: nothing to rank


def test_the_timing_lines_carry_the_disagreement_and_a_failed_check_says_why(tmp_path) -> None:  # noqa: ANN001
    missing = burst_check(isolated(1.0, 2.0), {"shallow": ("onnxruntime", str(tmp_path / "gone.onnx")),
                                                "deep": ("onnxruntime", str(tmp_path / "gone2.onnx"))}, ["shallow", "deep"])
    assert "error" in missing and burst_line(missing).startswith("in-process burst check of the finalists not run:")
    chosen = {"p50_ms": 1.0, "spread_ms": [0.9, 1.1], "threads": 1}
    bursts = {"threads": 1, "same_ranking": False, "isolated_order": ["a", "b"], "burst_order": ["b", "a"],
              "burst_ms": {"a": {"median_ms": 2.0}, "b": {"median_ms": 1.0}}}
    summary = {"timing": {"threads": [1], "rounds": 3, "runs": 50, "cpu": "X", "bursts": bursts},
               "comparison": {"chosen": chosen}}
    assert any("rank the finalists differently: b 1.0000 < a 2.0000 ms" in x for x in summary_lines(summary))
