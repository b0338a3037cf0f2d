"""Kernel-level latency: the optimised graph's shapes, features, sampled graphs, the fit, the record store."""

import gzip
import json
import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgemap.devices.kernels import sampler
from edgemap.devices.kernels.features import features, precision, shape_class
from edgemap.devices.kernels.ortgraph import optimised_kernels
from edgemap.devices.kernels.predictor import KernelPredictor
from edgemap.devices.kernels.profiling import profile_model
from edgemap.devices.kernels.store import (isa_tag, kernels_path, load_predictor, read_records, write_record)
from edgemap.errors import EdgemapError

DW = {"kind": "conv", "hw": 12, "cin": 16, "cout": 16, "k": 3, "stride": 1, "groups": "dw", "act": "hardswish",
      "bn": True, "res": True, "pool": "max"}


def _net() -> onnx.ModelProto:
    """A 3-block network unlike any single sampled block: dense conv, depthwise + HardSwish + residual, head."""
    g = sampler.GraphBuilder(3)
    x = g.op("Relu", [g.op("Conv", ["x", g.weight(16, 1, 3, 3), g.weight(16)], pads=[1] * 4)])
    h = g.op("HardSwish", [g.op("Conv", [x, g.weight(16, 1, 3, 3), g.weight(16)], pads=[1] * 4, group=16)])
    x = g.op("MaxPool", [g.op("Add", [h, x])], kernel_shape=[2, 2], strides=[2, 2])
    y = g.op("Gemm", [g.op("Flatten", [g.op("GlobalAveragePool", [x])]), g.weight(5, 16), g.weight(5)], transB=1)
    return g.model([1, 1, 14, 14], y)


@pytest.fixture(scope="module")
def campaign():
    """A tiny sampling campaign (a few seconds): enough kernels of each type in the test network to fit."""
    from edgemap.devices.kernels.campaign import run_campaign

    ort.set_default_logger_severity(3)
    return run_campaign(budget_s=8.0, threads=(1,), seed=1)


def _profiled_vs_read(blob: bytes, shape: tuple, tmp_path) -> tuple[list, list, list]:
    """(output shapes the profiler reports, output shapes read from the optimised graph, shape-rule warnings)."""
    from edgemap.devices.kernels.ortgraph import read_kernels

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.log_severity_level = 1, 3
    opts.enable_profiling, opts.profile_file_prefix = True, str(tmp_path / "p")
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    sess = ort.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])
    sess.run(None, {"x": np.zeros(shape, np.float32)})
    events = json.loads(open(sess.end_profiling()).read())
    profiled = [tuple(next(iter(e["args"]["output_type_shape"][0].values()))) for e in events
                if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    kernels, warnings = read_kernels(tmp_path / "opt.onnx")
    return profiled, [k.output for k in kernels], warnings


@pytest.mark.parametrize("prec", ["fp32", "int8"])
def test_shapes_of_the_optimised_graph_match_the_profiler(prec, tmp_path):
    model = sampler.build(DW)
    blob = model.SerializeToString() if prec == "fp32" else sampler.quantize(model)
    profiled, read, warnings = _profiled_vs_read(blob, (1, 16, 12, 12), tmp_path)
    assert read == profiled and not warnings
    if prec == "int8":
        from edgemap.devices.kernels.ortgraph import read_kernels

        assert any(k.op == "QLinearConv" for k in read_kernels(tmp_path / "opt.onnx")[0]), "QDQ should run as integer convs"


def test_pad_resize_split_slice_reduce_shapes_match_the_profiler(tmp_path):
    from onnx import helper

    g = sampler.GraphBuilder(0)
    x = g.op("Conv", ["x", g.weight(8, 3, 3, 3)], pads=[1] * 4)
    x = g.op("Pad", [x, g.const(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))])
    x = g.op("Resize", [x, "", g.const(np.array([1, 1, 2, 2], np.float32))], mode="nearest")
    g.nodes.append(helper.make_node("Split", [x, g.const(np.array([3, 5], np.int64))], ["s1", "s2"], axis=1))
    x = g.op("Slice", ["s2", g.const(np.array([1], np.int64)), g.const(np.array([4], np.int64)), g.const(np.array([1], np.int64))])
    x = g.op("Mul", ["s1", x])
    x = g.op("ReduceMean", [x], axes=[2, 3], keepdims=0)
    profiled, read, warnings = _profiled_vs_read(g.model([1, 3, 10, 10], g.op("Gemm", [x, g.weight(5, 3)], transB=1))
                                                 .SerializeToString(), (1, 3, 10, 10), tmp_path)
    assert read == profiled and not warnings


def test_conv_features_count_macs_and_classify_depthwise():
    kernels, _ = optimised_kernels(sampler.build(DW).SerializeToString(), threads=1)
    dw = next(k for k in kernels if "Conv" in k.op)
    f = features(dw, threads=1)
    assert f["macs"] == 16 * 12 * 12 * 9 and f["groups"] == 16 and f["kernel"] == 9
    assert shape_class(dw).endswith(":dw:kxk") and precision(dw) == "fp32"
    assert f["act"] > 0  # HardSwish fused into the convolution


@pytest.mark.parametrize("kind", ["conv", "fc", "concat", "eltwise"])
def test_sampled_configurations_build_and_quantize(kind):
    rng = np.random.default_rng(5)
    cfg = next(c for c in (sampler.random_config(rng) for _ in range(200)) if c["kind"] == kind)
    for blob in (sampler.build(cfg).SerializeToString(), sampler.quantize(sampler.build(cfg))):
        p = profile_model(blob, threads=1, runs=3, warmup=1)
        assert len(p.kernel_s) == len(p.kernels) > 0 and all(s > 0 for s in p.kernel_s) and p.call_s > 0


def test_fit_on_sampled_kernels_predicts_an_unseen_network(campaign, tmp_path):
    from edgemap.devices.kernels.campaign import as_samples
    from edgemap.devices.kernels.predict import predict_model

    pred = KernelPredictor(as_samples(campaign["kernels"]), campaign["calls"])
    path = tmp_path / "net.onnx"
    onnx.save(_net(), str(path))
    measured = profile_model(path, threads=1, runs=40, warmup=5).call_s
    predicted = predict_model(path, pred, threads=1).total_s
    assert 0.5 < predicted / measured < 2.0, (predicted, measured)
    assert campaign["rounds"] or campaign["elapsed_s"] >= 8.0


def test_duplicates_are_dropped_and_neighbours_stay_valid():
    from edgemap.devices.kernels.campaign import neighbour

    rng = np.random.default_rng(0)
    for _ in range(50):
        n = neighbour(DW, rng)
        assert n["cin"] == n["cout"] and n["hw"] >= n["k"]
        sampler.build(n)
    assert sampler.signature(DW) == sampler.signature(dict(reversed(list(DW.items()))))


def test_records_are_kept_per_instruction_set(campaign, tmp_path):
    path = kernels_path(tmp_path / "host.yaml")
    rec = campaign | {"isa": "avx512_vnni", "date": "today", "evidence": {"cpu": "x"}, "level": "all", "how": "test"}
    write_record(path, "avx512_vnni", rec)
    write_record(path, "avx2", rec | {"isa": "avx2"})
    assert set(read_records(path)) == {"avx512_vnni", "avx2"}
    assert load_predictor(path, "neon") is None
    pred, got = load_predictor(path, "avx2")
    assert got["isa"] == "avx2" and pred.n_samples > 0
    path.write_bytes(gzip.compress(json.dumps({"format": 99, "by_isa": {}}).encode()))
    with pytest.raises(EdgemapError, match="format"):
        read_records(path)
    assert isa_tag(["avx2", "avx512_vnni"]) == "avx512_vnni" and isa_tag([]) == "generic"


def test_a_symbolic_spatial_dimension_is_a_clear_error(tmp_path):
    model = sampler.build(DW)
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "h"
    with pytest.raises(EdgemapError, match="symbolic"):
        optimised_kernels(model.SerializeToString(), threads=1)


def test_call_model_adds_a_per_call_constant():
    calls = [{"threads": 1, "prec": "fp32", "n": n, "sum_s": 1e-5 * n, "call_s": 1e-5 * n + 4e-6 - 1e-6 * n} for n in range(2, 9)]
    pred = KernelPredictor([{"key": "A", "prec": "fp32", "threads": 1, "s": 1e-5,
                             "f": {k: 1.0 for k in ("macs", "in_bytes", "w_bytes", "out_bytes")}}], calls)
    c0, c1 = pred.call_constants(1, "fp32")
    assert math.isclose(c0, 4e-6, rel_tol=1e-6) and math.isclose(c1, -1e-6, rel_tol=1e-6)
    assert pred.call_constants(2, "int8") == (c0, c1)  # nearest thread count, any precision
    assert math.isclose(pred.call_time(1e-4, 10, 1, "fp32"), 1e-4 + 4e-6 - 1e-5, rel_tol=1e-6)


def test_call_model_ignores_a_tail_of_slow_calls():
    # a fifth of the calls 30 % slow (the other core busy): the typical call's constants still come out
    calls = [{"threads": 2, "prec": "fp32", "n": n, "sum_s": 1e-5 * n * (1 + k / 10),
              "call_s": (1e-5 * n * (1 + k / 10) + 4e-6 - 1e-6 * n) * (1.3 if k == 4 else 1.0)}
             for n in range(2, 9) for k in range(5)]
    pred = KernelPredictor([{"key": "A", "prec": "fp32", "threads": 2, "s": 1e-5,
                             "f": {k: 1.0 for k in ("macs", "in_bytes", "w_bytes", "out_bytes")}}], calls)
    c0, c1 = pred.call_constants(2, "fp32")
    assert math.isclose(c0, 4e-6, rel_tol=0.02) and math.isclose(c1, -1e-6, rel_tol=0.05)
