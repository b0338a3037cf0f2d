"""Latency measurement: warm-up, then timed runs, interleaved across candidates so ratios are fair."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np


def summarize(samples_s: list[float]) -> dict:
    """Latency statistics in milliseconds: mean, std, p50, p90, p99, min, max, n."""
    ms = np.asarray(samples_s) * 1000.0
    return {"mean_ms": float(ms.mean()), "std_ms": float(ms.std()), "p50_ms": float(np.percentile(ms, 50)),
            "p90_ms": float(np.percentile(ms, 90)), "p99_ms": float(np.percentile(ms, 99)),
            "min_ms": float(ms.min()), "max_ms": float(ms.max()), "n": int(len(ms))}


def measure_interleaved(fns: dict[str, Callable[[], object]], runs: int = 200, warmup: int = 20) -> dict[str, dict]:
    """Time each callable `runs` times, round-robin (A B C A B C ...), after `warmup` calls each.

    Interleaving spreads machine noise evenly over the candidates, so their ratio is fair even
    when the absolute figures drift.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    return {name: summarize(s) for name, s in samples.items()}
