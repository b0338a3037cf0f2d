"""Interleaved latency measurement: bursts, call counts and statistics."""

from __future__ import annotations

import time

import pytest

from edgemap.runtime.latency import measure_interleaved


def _counter(calls: list[str], name: str, sleep_s: float = 0.0):  # noqa: ANN202
    def fn() -> None:
        calls.append(name)
        if sleep_s:
            time.sleep(sleep_s)
    return fn


def test_bursts_time_runs_calls_each_after_one_untimed_call() -> None:
    calls: list[str] = []
    out = measure_interleaved({"a": _counter(calls, "a"), "b": _counter(calls, "b")}, runs=25, warmup=3, burst=10)
    assert out["a"]["n"] == out["b"]["n"] == 25 and out["a"]["burst"] == 10
    # 3 warm-up calls + 3 bursts, each with one untimed call first, + 25 timed calls
    assert calls.count("a") == calls.count("b") == 3 + 3 + 25
    body = calls[6:]
    assert body[:11] == ["a"] * 11 and body[11:22] == ["b"] * 11  # bursts, not A B A B


def test_burst_one_is_call_by_call() -> None:
    calls: list[str] = []
    measure_interleaved({"a": _counter(calls, "a"), "b": _counter(calls, "b")}, runs=4, warmup=0, burst=1)
    assert calls == ["a", "b"] * 4


def test_a_slower_callable_measures_slower() -> None:
    out = measure_interleaved({"fast": lambda: None, "slow": _counter([], "s", 0.002)}, runs=10, warmup=1)
    assert out["slow"]["p50_ms"] > 1.5 > out["fast"]["p50_ms"]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="burst"):
        measure_interleaved({"a": lambda: None}, runs=5, burst=0)
