"""Quantization with ONNX Runtime: integer kernels really run, bad inputs fail cleanly, accuracy control."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgemap.compress.accuracy_control import quantize_with_accuracy_control
from edgemap.compress.calibration import calibration_array
from edgemap.compress.inspect import integer_summary, require_integer_kernels
from edgemap.compress.measure import onnx_logits
from edgemap.compress.quantize import (QuantizeDynamic, QuantizeFp16, QuantizeStatic, StaticQuantizer,
                                       quantize_dynamic_file, quantize_fp16_file, quantize_static_file,
                                       quantize_static_onnx)
from edgemap.data.transforms import Normalization
from edgemap.errors import EdgemapError


@pytest.mark.parametrize("calibration", ["minmax", "entropy", "percentile"])
def test_static_int8_runs_integer_kernels_and_shrinks(tiny_onnx: Path, ctx, tmp_path: Path, calibration: str) -> None:  # noqa: ANN001
    out = tmp_path / "int8.onnx"
    report = quantize_static_file(QuantizeStatic(calibration=calibration, samples=32), tiny_onnx, out, ctx)
    summary = report.extra["int8"]
    assert summary["integer_by_type"].get("QLinearConv", 0) == 2 and summary["float_compute_ops"] == 0
    assert report.file_bytes[1] < report.file_bytes[0]
    assert report.extra["calibration"]["samples"] == 32
    assert abs(report.accuracy["after"]["top1"] - report.accuracy["before"]["top1"]) <= 5.0
    assert report.latency["after"]["n"] == 10


def test_float_model_is_not_accepted_as_quantized(tiny_onnx: Path) -> None:
    assert integer_summary(tiny_onnx)["integer_ops"] == 0
    with pytest.raises(EdgemapError, match="no integer kernels"):
        require_integer_kernels(tiny_onnx)


def test_wrong_calibration_shape_fails_and_writes_nothing(tiny_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "int8.onnx"
    with pytest.raises(EdgemapError, match=r"calibration data has shape \(4, 3, 16, 16\)"):
        quantize_static_onnx(tiny_onnx, out, np.zeros((4, 3, 16, 16), np.float32), QuantizeStatic())
    assert not out.exists() and list(tmp_path.glob(".int8.onnx*")) == []


def test_model_without_quantizable_ops_is_refused(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3, 32, 32])
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["out"], name="r")], "g", [x], [y])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    out = tmp_path / "q.onnx"
    with pytest.raises(EdgemapError, match="no quantizable operator"):
        quantize_static_onnx(path, out, np.zeros((2, 3, 32, 32), np.float32), QuantizeStatic())
    assert not out.exists()


def test_dynamic_int8_warns_on_convolutions(tiny_onnx: Path, ctx, tmp_path: Path) -> None:  # noqa: ANN001
    with pytest.warns(UserWarning, match="convolutional"):
        report = quantize_dynamic_file(QuantizeDynamic(), tiny_onnx, tmp_path / "dyn.onnx", ctx)
    assert report.extra["int8"]["integer_by_type"].get("ConvInteger", 0) == 2
    assert any("slower" in n for n in report.notes)


def test_fp16_halves_the_weights_and_keeps_the_outputs(tiny_onnx: Path, ctx, sample, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "fp16.onnx"
    quantize_fp16_file(QuantizeFp16(), tiny_onnx, out, ctx)
    assert any(t.data_type == TensorProto.FLOAT16 for t in onnx.load(str(out)).graph.initializer)
    data = sample.subset(slice(0, 50))
    ref, half = onnx_logits(tiny_onnx, data, Normalization()), onnx_logits(out, data, Normalization())
    assert np.abs(ref - half).max() < 1e-2


def test_accuracy_control_excludes_layers_until_met_or_reports_best(trained_tiny_onnx: Path, sample,  # noqa: ANN001
                                                                     tmp_path: Path) -> None:
    calib = calibration_array(sample, 16, Normalization())
    data = sample.subset(slice(800, 1000))
    # a 60th-percentile calibration clips most activations: plain INT8 loses accuracy on purpose
    with StaticQuantizer(trained_tiny_onnx, calib, QuantizeStatic(samples=16, calibration="percentile", percentile=60)) as q:
        easy = quantize_with_accuracy_control(q, tmp_path / "easy.onnx", data, Normalization(), max_drop=100.0)
        assert easy["met"] and easy["excluded"] == [] and len(easy["steps"]) == 1
        strict = quantize_with_accuracy_control(q, tmp_path / "strict.onnx", data, Normalization(), max_drop=0.0)
    assert (tmp_path / "strict.onnx").is_file()
    assert strict["steps"][0]["drop"] > 0  # plain INT8 missed the target: sensitivities ranked, layers put back
    assert set(strict["sensitivity_mse"]) == set(q.nodes)
    assert len(strict["steps"]) > 1 and strict["steps"][1]["excluded"]
    assert strict["best_drop"] == min(s["drop"] for s in strict["steps"])
    assert strict["met"] == (strict["best_drop"] <= 0.0)
    assert len(strict["excluded"]) < len(q.nodes)  # at least one layer stays INT8
    require_integer_kernels(tmp_path / "strict.onnx")


def test_float_first_last_keeps_the_ends_in_float(tiny_onnx: Path, sample, tmp_path: Path) -> None:  # noqa: ANN001
    calib = calibration_array(sample, 16, Normalization())
    summary = quantize_static_onnx(tiny_onnx, tmp_path / "q.onnx", calib, QuantizeStatic(float_first_last=True))
    assert summary["float_by_type"] == {"Conv": 1, "Gemm": 1} and summary["integer_by_type"]["QLinearConv"] == 1
    with pytest.raises(EdgemapError, match="no node named nope"):
        quantize_static_onnx(tiny_onnx, tmp_path / "q2.onnx", calib, QuantizeStatic(exclude=("nope",)))
