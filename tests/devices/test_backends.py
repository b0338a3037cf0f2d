"""Whole-call latency predictors for OpenVINO and LiteRT: the fit, the features, the record store, and
`estimate --backend` / `devices calibrate-backend` as a user runs them (OpenVINO measured for real here;
LiteRT's conversion is too slow for the suite, its records come from the same code)."""

import gzip
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from edgemap.devices.kernels.backends import (COLUMNS, BackendPredictor, backends_path, fit_line, graph_features, kernel_items,
                                              load_backend_predictor, read_backend_records, write_backend_record)
from edgemap.devices.kernels.predict import KernelRow
from edgemap.errors import EdgemapError

SHIPPED = os.path.join(os.path.dirname(__file__), "..", "..", "edgemap", "devices", "profiles")


def edgemap(*args, env=None):
    return subprocess.run([sys.executable, "-m", "edgemap.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_fit_line_recovers_a_non_negative_line_and_ignores_a_slow_tail():
    rng = np.random.default_rng(0)
    x = np.column_stack([np.ones(60), rng.uniform(1, 10, 60), rng.uniform(1, 5, 60)])
    true = np.array([2.0, 0.5, 0.0])
    y = x @ true
    y[:6] *= 3.0  # a tenth of the calls disturbed by a busy neighbour
    coef = fit_line(x, y)
    assert np.all(coef >= 0)
    assert np.allclose(coef, true, rtol=0.05, atol=0.05)


def test_graph_features_sum_each_kernel_class():
    rows = [KernelRow("c", "nchwc.Conv", "nchwc.Conv:dense:kxk", "fp32", 100, 40, 1e-5, "r"),
            KernelRow("d", "nchwc.Conv", "nchwc.Conv:dw:kxk", "fp32", 10, 20, 2e-6, "r"),
            KernelRow("q", "QuantizeLinear", "QuantizeLinear[fp32]", "fp32", 0, 8, 1e-6, "r"),
            KernelRow("g", "Gemm", "Gemm[fp32]", "fp32", 50, 30, 3e-6, "r"),
            KernelRow("r", "Relu", "Relu[fp32]", "fp32", 0, 16, 5e-7, "r"),
            KernelRow("h", "HardSigmoid", "HardSigmoid[fp32]", "fp32", 0, 12, 5e-7, "r"),
            KernelRow("c2", "nchwc.Conv", "nchwc.Conv:dense:1x1", "fp32", 200, 60, 2e-5, "r")]
    f = graph_features(kernel_items(rows))
    assert set(f) == set(COLUMNS) and f["const"] == 1.0
    assert (f["conv_dense.kernels"], f["conv_dense.macs"], f["conv_dense.bytes"]) == (2, 300, 100)
    assert f["conv_group.kernels"] == 1 and f["quant.kernels"] == 1 and f["fc.macs"] == 50 and f["other.bytes"] == 16
    assert f["nonlinear.kernels"] == 1 and f["nonlinear.bytes"] == 12
    assert f["conv_dense.ort_s"] == pytest.approx(3e-5)


def _graphs(n: int, prec: str = "fp32") -> list[dict]:
    """Records of `n` graphs whose time is 20 us + 1 ns per dense-conv MAC at 1 thread, 0.6 of that at 2."""
    out = []
    for i in range(n):
        items = [["nchwc.Conv:dense:kxk", "nchwc.Conv", 1000 * (i + 1), 0, 0.0]]
        out.append({"cfg": i, "prec": prec, "kernels": {"1": items, "2": items},
                    "times": {"1": 20e-6 + 1e-9 * items[0][2], "2": 0.6 * (20e-6 + 1e-9 * items[0][2])}})
    return out


def test_predictor_is_per_precision_and_thread_count():
    p = BackendPredictor("litert", _graphs(12) + _graphs(3, "int8"))
    assert p.threads_for("fp32", 4) == 2 and p.threads_for("int8", 1) is None  # 3 INT8 graphs: too few to fit
    f = graph_features(_graphs(12)[5]["kernels"]["1"])
    assert p.predict(f, "fp32", 1) == pytest.approx(26e-6, rel=0.02)
    assert p.predict(f, "fp32", 2) == pytest.approx(0.6 * 26e-6, rel=0.02)


def test_record_store_keeps_other_backends_and_refuses_a_foreign_file(tmp_path):
    path = backends_path(tmp_path / "dev.yaml")
    assert path.name == "dev.backends.json.gz" and read_backend_records(path) == {}
    write_backend_record(path, "avx2", {"backend": "litert", "graphs": _graphs(10)})
    write_backend_record(path, "avx2", {"backend": "openvino", "graphs": _graphs(10)})
    assert set(read_backend_records(path)["avx2"]) == {"litert", "openvino"}
    pred, rec = load_backend_predictor(path, "openvino", "avx2")
    assert pred.backend == "openvino" and len(rec["graphs"]) == 10
    assert load_backend_predictor(path, "openvino", "neon") is None
    path.write_bytes(gzip.compress(json.dumps({"format": 99}).encode()))  # e.g. a newer edgemap's
    with pytest.raises(EdgemapError, match="format 99"):
        read_backend_records(path)
    path.write_bytes(b"not gzip")
    with pytest.raises(EdgemapError, match="not a backend-record file"):
        read_backend_records(path)


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory):
    """A user's profile directory: the shipped host profile and kernel records, and OpenVINO measured here
    on 8 sampled graphs (FP32 and INT8, 1 thread: the suite's time) by calibrate-backend's own functions."""
    from edgemap.commands.backend_files import campaign_functions
    from edgemap.devices.calibrate import calibrate_backend

    d = tmp_path_factory.mktemp("devices")
    for name in ("host.yaml", "host.kernels.json.gz"):
        shutil.copy(os.path.join(SHIPPED, name), d / name)
    path = calibrate_backend(d / "host.yaml", "openvino", campaign_functions("openvino"), graphs=8, threads=(1,),
                             log=lambda s: None)
    assert path == d / "host.backends.json.gz"
    rec = read_backend_records(path)
    (tag, by_backend), = rec.items()
    assert len(by_backend["openvino"]["configs"]) == 8 and by_backend["openvino"]["evidence"]["cpu"]
    return d


def test_estimate_for_openvino_is_its_predictor_and_scales_to_another_cpu(user_dir, models, monkeypatch):
    from edgemap.devices.estimate import estimate

    monkeypatch.setenv("EDGEMAP_DEVICES", str(user_dir))
    for model in (models["fp32"], models["int8"]):
        est = estimate(model, "host", threads=1, backend="openvino")
        assert est.backend == "openvino" and est.latency_s.how.startswith("openvino whole-call line")
        assert 1e-6 < est.latency_s.value < 0.05
    two = estimate(models["int8"], "host", threads=2, backend="openvino")
    assert any("measured up to 1 thread(s): predicted at 1, not 2" in n for n in two.notes)
    host = estimate(models["fp32"], "host", threads=1, backend="openvino")
    rpi = estimate(models["fp32"], "rpi4", threads=1, backend="openvino")
    assert rpi.latency_s.how.startswith("scaled from the host: openvino") and rpi.latency_s.value > host.latency_s.value
    monkeypatch.setattr("edgemap.devices.kernels.device.isa_tag", lambda: "neon")  # records of another ISA are not used
    other = estimate(models["fp32"], "host", backend="openvino")
    assert "roofline" in other.latency_s.how and any("calibrate-backend openvino" in n for n in other.notes)


def test_a_scaled_backend_estimate_lists_each_kernel_warning_once(user_dir, monkeypatch, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from edgemap.devices.estimate import estimate

    monkeypatch.setenv("EDGEMAP_DEVICES", str(user_dir))
    graph = helper.make_graph([helper.make_node("ReduceMean", ["x"], ["y"], axes=[2, 3], keepdims=0)], "mean",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    path = tmp_path / "mean.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    notes = estimate(path, "rpi4", threads=1, backend="openvino").notes
    assert sum("never sampled" in n and "ReduceMean" in n for n in notes) == 1, notes


def test_user_errors_are_one_line(user_dir, models, monkeypatch, tmp_path):
    from edgemap.cli import app

    monkeypatch.setenv("EDGEMAP_DEVICES", str(user_dir))
    monkeypatch.setenv("EDGEMAP_STORE", str(tmp_path / "store.db"))
    for args, msg in ((("estimate", str(models["fp32"]), "--backend", "tvm"), "unknown backend 'tvm'"),
                      (("devices", "calibrate-backend", "tvm"), "unknown backend 'tvm'"),
                      (("devices", "calibrate-backend", "openvino", "--profile", str(user_dir / "host.yaml"), "--graphs", "2"),
                       "at least 8"),
                      (("estimate", str(models["fp32"]), "--backend", "litert", "--measure"), "LiteRT runs .tflite")):
        with pytest.raises(EdgemapError, match=msg) as info:
            app(args=list(args), prog_name="edgemap", standalone_mode=False)
        assert "\n" not in str(info.value)


def test_cli_estimates_and_measures_in_openvino(user_dir, models):
    r = edgemap("estimate", str(models["int8"]), "--threads", "1", "--backend", "openvino", "--measure",
                env={"EDGEMAP_DEVICES": str(user_dir), "COLUMNS": "250"})
    assert r.returncode == 0, r.stderr
    assert "openvino whole-call line" in r.stdout and "measured latency (openvino, here)" in r.stdout


def _record(slow_2t: float) -> dict:
    """A calibration record of 40 one-kernel graphs (time linear in MACs, half at 2 threads), fp32: as the campaign
    stores it; each 2-thread call `slow_2t` times its kernels' share (a busy second core)."""
    from edgemap.devices.kernels.features import FEATURES

    kernels, calls = [], []
    for cfg in range(40):
        macs = 1000.0 * (cfg + 1) * (1 + cfg % 3)
        for t in (1, 2):
            s = (1e-6 + 1e-9 * macs) / t
            f = [macs if n == "macs" else float(t) if n == "threads" else 1.0 for n in FEATURES]
            kernels.append(["Conv:dense:kxk", "fp32", t, s, f, cfg])
            calls.append({"threads": t, "prec": "fp32", "n": 1, "sum_s": s, "call_s": (5e-6 + s) * (slow_2t if t == 2 else 1.0),
                          "cfg": cfg})
    return {"kernels": kernels, "calls": calls, "features": list(FEATURES)}


def test_thread_ratio_error_is_held_out_and_sees_a_thread_count_the_kernels_do_not_explain():
    from edgemap.devices.kernels.uncertainty import thread_ratio_error

    assert thread_ratio_error(_record(1.0))["fp32"] < 0.02
    assert thread_ratio_error(_record(1.3))["fp32"] > 0.02


def test_a_multi_thread_line_measured_on_busy_cores_says_so(models, tmp_path, monkeypatch):
    """A LiteRT record measured at load 14 on 2 CPUs (as the one shipped before 2026-12-01 16:37 was): its 2-thread
    estimate says the line holds for busy cores; its 1-thread one, and OpenVINO's (measured at load 2), say nothing."""
    from edgemap.devices.estimate import estimate
    from edgemap.devices.kernels.backends import read_backend_records, write_backend_record

    for name in ("host.yaml", "host.kernels.json.gz"):
        shutil.copy(os.path.join(SHIPPED, name), tmp_path / name)
    for tag, by in read_backend_records(backends_path(os.path.join(SHIPPED, "host.yaml"))).items():
        for rec in by.values():
            if rec["backend"] == "litert":
                rec["evidence"] |= {"load_average": [14.04, 13.32, 9.03], "logical_cpus": 2}
            write_backend_record(tmp_path / "host.backends.json.gz", tag, rec)
    monkeypatch.setenv("EDGEMAP_DEVICES", str(tmp_path))
    busy = [n for n in estimate(models["fp32"], "host", threads=2, backend="litert").notes if "cores busy" in n]
    assert len(busy) == 1 and "load 14.04 on 2 logical CPUs" in busy[0] and "calibrate-backend litert" in busy[0]
    assert not any("cores busy" in n for n in estimate(models["fp32"], "host", threads=1, backend="litert").notes)
    assert not any("cores busy" in n for n in estimate(models["fp32"], "host", threads=2, backend="openvino").notes)


def test_backend_ratio_error_is_held_out_and_sees_an_unexplained_thread_ratio():
    from edgemap.devices.kernels.uncertainty import backend_ratio_error

    assert backend_ratio_error(_graphs(40))["fp32"] < 0.02  # 2 threads always 0.6x: the lines explain it
    noisy = _graphs(40)
    for i, g in enumerate(noisy):  # 2-thread calls 0-27 % slower, unrelated to size: no line over the kernels explains it
        g["times"]["2"] *= 1 + 0.03 * ((7 * i) % 10)
    assert backend_ratio_error(noisy)["fp32"] > 0.02
    assert backend_ratio_error(_graphs(6)) == {}  # too few graphs in a fold to fit a line: no margin claimed


def test_stored_tie_margins_are_read_without_refitting(tmp_path, monkeypatch):
    """calibrate-host stores the held-out margins in the record; estimate_margins reads them (a refit takes tens of s)."""
    from edgemap.devices.kernels.store import isa_tag, write_record
    from edgemap.devices.kernels.uncertainty import estimate_margins

    shutil.copy(os.path.join(SHIPPED, "host.yaml"), tmp_path / "host.yaml")
    write_record(tmp_path / "host.kernels.json.gz", isa_tag(), _record(1.0) | {"tie_margins": {"fp32": 0.123}})
    monkeypatch.setenv("EDGEMAP_DEVICES", str(tmp_path))
    assert estimate_margins("host") == {"fp32": 0.123} == estimate_margins("rpi4")  # rpi4 is scaled from the host
    write_record(tmp_path / "host.kernels.json.gz", isa_tag(), _record(1.0))  # older records: computed, held out
    assert estimate_margins("host")["fp32"] < 0.02


def test_litert_files_are_converted_as_edgemap_converts_and_timed_in_its_session(tmp_path):
    """One sampled block made into the .tflite files LiteRT runs (FP32, then INT8 from the same FP32 conversion)."""
    from edgemap.commands.backend_files import runtime_file, time_session
    from edgemap.devices.kernels import sampler
    from edgemap.devices.kernels.backend_campaign import onnx_pair

    cfg = {"kind": "conv", "hw": 8, "cin": 8, "cout": 8, "k": 3, "stride": 1, "groups": "dw", "act": "relu6", "bn": False,
           "res": True, "pool": "none"}
    pair = onnx_pair(sampler.build(cfg), tmp_path, "g0")
    fp32 = runtime_file("litert", pair, "fp32", tmp_path)
    int8 = runtime_file("litert", pair, "int8", tmp_path)
    assert fp32.suffix == int8.suffix == ".tflite" and fp32 != int8 and int8.stat().st_size > 0
    for f in (fp32, int8):
        assert 0 < time_session("litert", f, 1, runs=5, warmup=1) < 0.05
    with pytest.raises(EdgemapError, match="unknown backend"):
        runtime_file("tvm", pair, "fp32", tmp_path)


def test_openvino_capped_by_onednn_is_filed_under_the_capped_instruction_set(monkeypatch):
    from edgemap.devices.kernels.backends import backend_isa_tag
    from edgemap.devices.kernels.store import isa_tag

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    assert backend_isa_tag("openvino") == "avx2" and backend_isa_tag("litert") == isa_tag()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "SSE41")
    with pytest.raises(EdgemapError, match="SSE41"):
        backend_isa_tag("openvino")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert backend_isa_tag("openvino") == isa_tag()
