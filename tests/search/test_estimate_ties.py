"""The search's choice on estimated latencies: ties within the predictor's own held-out error (search/estimate_ties.py)."""

import io
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from edgemap.devices.kernels.uncertainty import estimate_margins
from edgemap.search.candidate import Candidate
from edgemap.search.estimate_ties import band_of, choose_on_estimates, on_estimates, tied
from edgemap.search.records import TrialMetrics

KERNEL = "kernel-level, scaled from the host: 7 kernels of ONNX Runtime's optimised graph"
ROOFLINE = "per-layer roofline on 1 thread(s); default parameters"


def trial(precision: str, threads: int, ms: float, acc: float, size: int = 1000, how: str = KERNEL, backend: str = "onnxruntime",
          basis: str = "estimated for the device") -> TrialMetrics:
    return TrialMetrics(Candidate(0.0, precision, "minmax" if precision == "int8" else "none", backend, threads),
                        accuracy=acc, accuracy_drop=0.0, latency_ms=ms, latency_basis=basis, size_bytes=size,
                        estimate={"latency_s": {"value": ms / 1e3, "unit": "s", "basis": "estimated", "how": how}})


@pytest.fixture(scope="module")
def margins():
    """The shipped host records' stored held-out margins (what a device without its own records is estimated from)."""
    m = estimate_margins("rpi5")
    assert set(m) == {"fp32", "int8"} and all(0.01 < v < 0.3 for v in m.values())
    return m


def test_thread_counts_within_the_band_are_a_tie_and_go_to_fewer_threads(margins):
    slower = 1.0 + margins["fp32"] / 2  # 1 thread estimated slower than 2, but within the fp32 band
    one, two = trial("fp32", 1, slower, 90.0), trial("fp32", 2, 1.0, 90.0)
    chosen, record = choose_on_estimates([two, one], "latency_ms", "rpi5")
    assert chosen is one and record["lowest_estimate"] == two.key and set(record["tied"]) == {one.key, two.key}
    assert f"tied within the estimate's ±{100 * margins['fp32']:.1f} %" in record["line"]
    assert "scaling to rpi5 adds error" in record["line"]  # the band is the host's; the scaling's error is unknown


def test_beyond_the_band_the_lowest_estimate_wins(margins):
    one, two = trial("fp32", 1, 1.0 + 2 * margins["fp32"], 90.0), trial("fp32", 2, 1.0, 90.0)
    chosen, record = choose_on_estimates([one, two], "latency_ms", "rpi5")
    assert chosen is two and record["tied"] == [two.key] and "no other candidate" in record["line"]


def test_ties_go_to_accuracy_then_size_then_threads_with_the_wider_band(margins):
    # INT8 lowest; FP32 within the INT8 band (the wider) but not within its own: the pair uses the larger band
    gap = (margins["fp32"] + margins["int8"]) / 2
    assert margins["int8"] > gap > margins["fp32"]
    int8 = trial("int8", 1, 1.0, 89.0, size=300)
    fp32 = trial("fp32", 1, 1.0 + gap, 90.0, size=1200)
    far = trial("fp32", 2, 1.5, 95.0, size=1200)  # more accurate, but well outside every band
    assert choose_on_estimates([int8, fp32, far], "latency_ms", "rpi5")[0] is fp32  # higher accuracy
    same_acc = trial("fp32", 1, 1.0 + gap, 89.0, size=1200)
    assert choose_on_estimates([int8, same_acc], "latency_ms", "rpi5")[0] is int8  # equal accuracy: the smaller file


def test_a_roofline_estimate_is_never_tied_and_the_choice_says_so():
    lowest, close = trial("fp32", 2, 1.0, 80.0, how=ROOFLINE), trial("fp32", 1, 1.001, 90.0, how=ROOFLINE)
    assert band_of(lowest, "stm32h7") is None
    chosen, record = choose_on_estimates([close, lowest], "latency_ms", "stm32h7")
    assert chosen is lowest and "roofline" in record["line"] and "error is not known" in record["line"]


def test_measured_latencies_are_not_estimates_and_energy_always_is():
    measured = [trial("fp32", t, 1.0, 90.0, basis="measured on this host") for t in (1, 2)]
    assert not on_estimates(measured, "latency_ms")
    assert on_estimates([trial("fp32", 1, 1.0, 90.0)], "latency_ms") and not on_estimates([trial("fp32", 1, 1.0, 90.0)], "size_bytes")
    power = {"energy_j": {"value": 1e-3, "how": "5.35 W board power (profile) x estimated latency"}}
    on_host = [replace(m, estimate=m.estimate | power) for m in measured]  # energy on the host: power x the estimate
    assert on_estimates(on_host, "energy_mj") and not on_estimates(measured, "energy_mj")


def test_tied_is_symmetric_and_relative():
    assert tied(1.0, 1.05, 0.06, 0.0) and tied(1.05, 1.0, 0.0, 0.06)
    assert not tied(1.0, 1.07, 0.06, 0.05) and tied(1e-5, 1.06e-5, 0.06, 0.06)


def test_map_choice_on_a_real_device_estimate_is_recorded_printed_and_read_back(tmp_path):
    """workflow.choose on two thread counts of one model estimated for rpi5 by the real estimator: the chosen one
    follows the tie rule, results.json keeps the choice, the map's output prints its line."""
    import torch

    from edgemap.convert.onnx_export import export_onnx
    from edgemap.devices.catalogue import resolve
    from edgemap.models import zoo
    from edgemap.search import workflow
    from edgemap.search.evaluate import device_estimate
    from edgemap.search.mapper import MapOptions
    from edgemap.search.outputs import print_summary
    from edgemap.search.records import SearchContext, SearchSummary
    from edgemap.search.space import SearchSpace
    from edgemap.search.strategy import Constraints

    torch.manual_seed(0)
    onnx_path = export_onnx(zoo.build("tiny"), tmp_path / "tiny.onnx")
    ctx = SearchContext(recipe={}, settings=None, work_dir=str(tmp_path), cache_dir=str(tmp_path), eval_npz="", device="rpi5")
    results = {}
    for t in (1, 2):
        est = device_estimate(ctx, Candidate(threads=t), Path(onnx_path))
        m = trial("fp32", t, est["latency_s"]["value"] * 1e3, 90.0, how=est["latency_s"]["how"])
        results[m.key] = m
    opts = MapOptions(device="rpi5", constraints=Constraints(max_accuracy_drop=1.0), progress=False)
    job = workflow.Job(Path(onnx_path), resolve("rpi5"), SearchSpace(), ctx, None, (), "test data", False)
    summary = workflow.choose(opts, job, results)
    one, two = results["p0-fp32-onnxruntime-t1"], results["p0-fp32-onnxruntime-t2"]
    band = estimate_margins("rpi5")["fp32"]
    expect = one if tied(one.latency_ms, two.latency_ms, band, band) else min((one, two), key=lambda m: m.latency_ms)
    assert summary.chosen.key == expect.key and summary.choice["chosen"] == expect.key
    assert SearchSummary.from_dict(summary.to_dict()).choice == summary.choice
    out = io.StringIO()
    print_summary(summary, Console(file=out, width=300))
    assert summary.choice["line"] in out.getvalue() and "estimate's ±" in out.getvalue()
