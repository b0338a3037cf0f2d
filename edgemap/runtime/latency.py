"""Latency measurement: warm-up, then timed runs, interleaved across candidates by bursts so ratios are fair.

Calling sessions of different runtimes one call at a time (A B C A B C ...) is unfair on a small machine:
a multi-threaded runtime's workers keep spinning after a call returns (ONNX Runtime's pool, OpenMP in
PyTorch, TBB in OpenVINO) and take cores from whichever session runs next. On 2 cores this made one
ONNX Runtime session 2x slower than an identical one placed elsewhere in the round, and PyTorch eager
~15x slower than alone. Bursts keep the interleaving (machine drift still spreads evenly) but each
candidate runs `burst` times in a row and the first call of each burst, which pays for its neighbour,
is not timed. burst=1 is plain call-by-call interleaving (kept to show the difference).
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

BURST = 10  # timed calls in a row per candidate


def summarize(samples_s: list[float]) -> dict:
    """Latency statistics in milliseconds: mean, std, p50, p90, p99, min, max, n."""
    ms = np.asarray(samples_s) * 1000.0
    return {"mean_ms": float(ms.mean()), "std_ms": float(ms.std()), "p50_ms": float(np.percentile(ms, 50)),
            "p90_ms": float(np.percentile(ms, 90)), "p99_ms": float(np.percentile(ms, 99)),
            "min_ms": float(ms.min()), "max_ms": float(ms.max()), "n": int(len(ms))}


def measure_interleaved(fns: dict[str, Callable[[], object]], runs: int = 200, warmup: int = 20,
                        burst: int = BURST) -> dict[str, dict]:
    """Time each callable `runs` times after `warmup` calls each, interleaved in bursts of `burst` timed calls
    (each burst after one untimed call; burst=1: A B C A B C ... with every call timed)."""
    if burst < 1 or runs < 1:
        raise ValueError("runs and burst must be at least 1")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(math.ceil(runs / burst)):
        for name, fn in fns.items():
            if burst > 1 and len(fns) > 1:
                fn()  # pays for the previous candidate's spinning threads
            for _ in range(min(burst, runs - len(samples[name]))):
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
    return {name: {**summarize(s), "burst": burst} for name, s in samples.items()}
