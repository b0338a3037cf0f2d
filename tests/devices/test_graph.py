"""ONNX graph analysis: MACs, bytes, data types and peak live activations, checked against hand counts."""

import pytest

from edgemap.devices.graph import analyse
from edgemap.errors import EdgemapError

# conv 3x3 3->4 on 8x8: 256 outputs x 27; depthwise: 256 x 9; gemm 4->2: 2 x 4
MACS = 256 * 27 + 256 * 9 + 2 * 4
WEIGHT_BYTES = (4 * 27 + 4 * 9 + 2 * 4) * 4
# live at the depthwise conv: its input (4x8x8 fp32) and output (4x8x8 fp32); x (3x8x8) is dead by then
PEAK = 2 * 4 * 64 * 4


def test_fp32_costs_match_hand_counts(models):
    g = analyse(models["fp32"])
    assert g.macs == MACS and g.weight_bytes == WEIGHT_BYTES and g.peak_activation_bytes == PEAK
    assert g.precision == "fp32" and g.dtypes == ("fp32",)
    kinds = {l.op_type: l.kind for l in g.layers}
    assert kinds == {"Conv": kinds["Conv"], "Relu": "free", "GlobalAveragePool": "memory", "Flatten": "free", "Gemm": "gemm"}
    assert [l.kind for l in g.layers if l.op_type == "Conv"] == ["conv", "depthwise"]
    assert g.file_bytes == models["fp32"].stat().st_size


def test_batch_scales_activations_and_macs(models):
    g1, g4 = analyse(models["fp32"]), analyse(models["fp32"], batch=4)
    assert g4.macs == 4 * g1.macs and g4.peak_activation_bytes == 4 * g1.peak_activation_bytes
    assert g4.weight_bytes == g1.weight_bytes


def test_node_order_does_not_matter(models):
    a, b = analyse(models["fp32"]), analyse(models["reversed"])
    assert (a.macs, a.peak_activation_bytes, a.weight_bytes) == (b.macs, b.peak_activation_bytes, b.weight_bytes)


def test_fp16_halves_weights_and_activations(models):
    g = analyse(models["fp16"])
    assert g.precision == "fp16" and g.dtypes == ("fp16",) and g.macs == MACS
    # the peak is now at the input cast: fp32 x (768 B) and its fp16 copy (384 B) live together
    assert g.weight_bytes == WEIGHT_BYTES // 2 and g.peak_activation_bytes == 3 * 64 * (4 + 2)
    assert not g.warnings


def test_qdq_int8_runs_as_integer_layers_with_8bit_tensors(models):
    g = analyse(models["int8"])
    assert g.precision == "int8" and g.macs == MACS
    assert all(l.dtype == "int8" for l in g.layers if l.macs)
    # the peak is at the input QuantizeLinear: fp32 x (768 B) + its uint8 copy (192 B); conv tensors are 8-bit
    assert g.peak_activation_bytes == 3 * 64 * (4 + 1)
    assert max(l.bytes_moved for l in g.layers if l.op_type == "Conv") < 2224 / 3
    assert g.weight_bytes < WEIGHT_BYTES / 2  # int8 weights plus per-channel scales
    assert all(l.kind == "free" for l in g.layers if l.op_type == "DequantizeLinear")


def test_not_an_onnx_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(EdgemapError, match="x.onnx: not a readable ONNX model"):
        analyse(bad)
    with pytest.raises(EdgemapError, match="model file not found"):
        analyse(tmp_path / "missing.onnx")
