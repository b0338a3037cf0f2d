"""The planner: every option is listed, the bandwidth decides between device, split and server, the
accuracy budget and the objective are honoured, and the profile of a real (tiny) model feeds it."""

from __future__ import annotations

import pytest

from edgemap.errors import EdgemapError
from edgemap.split.planner import Network, emulated_device, flops_baseline, options, plan


def _enc(nbytes: float, top1: float) -> dict:
    return {"bytes": nbytes, "encode_ms": 0.01, "decode_ms": 0.01, "top1": top1, "agreement": 1.0}


def synthetic_profile() -> dict:
    """Device 20 ms, server 1 ms; input 30 kB raw; one split after 2 ms of device work sending 1 kB (INT8)."""
    fig = lambda ms: {"ms": ms, "basis": "measured", "how": "test"}  # noqa: E731
    return {"model": "m", "device": "d", "server": "s", "num_classes": 10, "power": {"idle_w": 1.0, "active_w": 5.0},
            "whole": {"macs": 1000, "device": fig(20.0), "server": fig(1.0), "top1": 0.90},
            "inputs": [{"encoding": "raw", "quality": None, **_enc(30000, 0.90)},
                       {"encoding": "jpeg", "quality": 50, **_enc(2000, 0.80)}],
            "cuts": [{"name": "c1", "head_macs": 100, "head_device": fig(2.0), "tail_server": fig(0.9),
                      "encodings": {"fp32": _enc(4000, 0.90), "int8": _enc(1000, 0.899)}}]}


def test_every_option_is_listed():
    labels = [o.label for o in options(synthetic_profile(), Network(10, 10))]
    assert labels == ["device", "input/raw", "input/jpeg-q50", "c1/fp32", "c1/int8"]


def test_bandwidth_decides(tmp_path):
    prof = synthetic_profile()
    best = lambda net: plan(prof, net, max_drop=0.5)[1].label  # noqa: E731 - the lossy JPEG is out
    assert best(Network(0.1, 5)) == "device"          # nothing crosses a 0.1 Mbps link in time
    assert best(Network(10, 5)) == "c1/int8"          # 1 kB beats 30 kB raw and 20 ms on the device
    assert best(Network(100_000, 1)) == "input/raw"   # bandwidth is free: skip the 2 ms head
    assert best(Network(10, 100)) == "device"         # the RTT alone exceeds the device's time
    assert plan(prof, Network(10, 5))[1].label == "input/jpeg-q50"  # without a budget the 2 kB JPEG wins


def test_latency_adds_up():
    o = {o.label: o for o in options(synthetic_profile(), Network(8, 10, overhead_ms=1))}["c1/int8"]
    wire = (1000 + 320 + 40 + 235) * 8 / 8e3  # body + framing up, logits + framing down, at 8 Mbps
    assert o.latency_ms == pytest.approx(2.0 + 0.02 + 1 + 10 + wire + 0.9)


def test_a_bearer_token_is_counted_in_every_remote_option():
    from edgemap.split.planner import REQUEST_HEADER_BYTES, framing_bytes

    token = "a" * 40
    assert framing_bytes() == REQUEST_HEADER_BYTES and framing_bytes(token) == REQUEST_HEADER_BYTES + 64
    plain = {o.label: o for o in options(synthetic_profile(), Network(8, 10))}
    with_token = {o.label: o for o in options(synthetic_profile(), Network(8, 10, request_header_bytes=framing_bytes(token)))}
    for label, o in with_token.items():  # 64 more bytes at 8 Mbps: 0.064 ms on every request, none on the device
        assert o.latency_ms - plain[label].latency_ms == pytest.approx(0 if label == "device" else 0.064)
        assert o.energy_mj >= plain[label].energy_mj and o.bytes_up == plain[label].bytes_up
    with pytest.raises(EdgemapError, match="header bytes must be >= 0"):
        Network(8, 10, request_header_bytes=-1)


def test_accuracy_budget_and_objective():
    prof = synthetic_profile()
    opts, best = plan(prof, Network(1, 5), max_drop=0.05)
    assert best.label == "device"  # the 1-point-losing jpeg and the 0.1-point int8 are out
    assert {o.label for o in opts if not o.feasible} == {"input/jpeg-q50", "c1/int8"}
    assert plan(prof, Network(10, 5), max_drop=15)[1].label == "input/jpeg-q50"
    _, by_energy = plan(prof, Network(10, 5), objective="energy")
    assert by_energy.energy_mj == min(o.energy_mj for o in options(prof, Network(10, 5)))
    with pytest.raises(EdgemapError, match="unknown objective"):
        plan(prof, Network(10, 5), objective="cost")


def test_bad_network_is_refused():
    with pytest.raises(EdgemapError, match="bandwidth must be > 0"):
        Network(0, 5)


def test_flops_baseline_and_emulated_device():
    prof = synthetic_profile()
    base = flops_baseline(prof, Network(8, 10))
    assert base["c1/int8"] == pytest.approx(100 * 20 / 1000 + 10 + 1.0 + 900 * 1 / 1000)
    slow = emulated_device(prof, 3)
    assert slow["whole"]["device"]["ms"] == 60 and slow["cuts"][0]["head_device"]["ms"] == 6
    assert prof["whole"]["device"]["ms"] == 20  # the original is left alone


def test_profile_of_a_real_model(split_export):
    prof = split_export["profile"]
    assert [c["name"] for c in prof["cuts"]] == [c.name for c in split_export["cuts"]]
    for c in prof["cuts"]:
        e = c["encodings"]
        assert e["fp32"]["bytes"] == 4 * e["int8"]["bytes"] == 4 * c["elements"]
        assert e["fp32"]["agreement"] == 1.0  # head + tail with FP32 activations is the whole model
        assert c["head_device"]["basis"] == "measured"
    assert [(r["encoding"], r["quality"]) for r in prof["inputs"]] == [("raw", None), ("png", None), ("jpeg", 50),
                                                                      ("jpeg", 90), ("webp", 50), ("webp", 90)]
    assert prof["inputs"][0]["bytes"] == 8 * 8 * 1 and prof["inputs"][1]["agreement"] == 1.0
    labels = {o.label for o in options(prof, Network(10, 10))}
    assert {"device", "input/raw", "input/webp-q50", "c3/int8-zstd"} <= labels


def test_estimated_profile_is_labelled(tmp_path, helpers):
    from edgemap.split.profile import part_latency

    import numpy as np

    path = helpers.chain_model(tmp_path / "m.onnx")
    fig = part_latency(path, "rpi4", np.zeros((1, 1, 8, 8), np.float32))
    assert fig["basis"] == "estimated" and fig["ms"] > 0


def test_agreement_budget_leaves_out_lossy_options():
    prof = synthetic_profile()
    prof["inputs"][1]["agreement"] = 0.95
    prof["cuts"][0]["encodings"]["int8"]["agreement"] = 0.998
    opts, best = plan(prof, Network(10, 5), min_agreement=99)
    assert best.label == "c1/int8"
    assert [o.label for o in opts if not o.feasible] == ["input/jpeg-q50"]


def test_codec_times_are_medians_that_a_load_burst_does_not_move(split_export):
    from edgemap.split.profile import _codec_ms

    # 9 typical encodes of 0.2 ms and one 30 ms stall (another process took the core): a request pays ~0.2 ms
    t = _codec_ms([0.0002] * 9 + [0.030], [0.0001] * 10)
    assert abs(t["encode_ms"] - 0.2) < 1e-9 and t["encode_ms_mean"] > 3.0 and abs(t["decode_ms"] - 0.1) < 1e-9
    for row in split_export["profile"]["inputs"] + [s for c in split_export["profile"]["cuts"] for s in c["encodings"].values()]:
        assert 0 <= row["encode_ms"] and 0 <= row["decode_ms"] and {"encode_ms_mean", "decode_ms_mean"} <= set(row)


def test_codec_times_are_taken_after_an_idle_gap():
    import time

    from edgemap.split.profile import codec_times

    calls = []
    t0 = time.perf_counter()
    t = codec_times(lambda i: calls.append(f"e{i}"), lambda i: calls.append(f"d{i}"), 3, gap_s=0.01)
    assert calls == ["e0", "d0", "e1", "d1", "e2", "d2"]  # each call on its own, after a pause (as in a request)
    assert time.perf_counter() - t0 >= 0.06 and 0 <= t["encode_ms"] < 5 and 0 <= t["decode_ms"] < 5
