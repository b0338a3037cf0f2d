"""Side-by-side batch-1 timing of several sessions (the map's finalists and its comparison), interleaved by bursts.

Calling sessions of different runtimes one call at a time (A B C A B C ...) is unfair on a small machine:
a multi-threaded runtime's workers keep spinning after a call returns (ONNX Runtime's pool, OpenMP in
PyTorch, TBB in OpenVINO) and take cores from whichever session runs next. On 2 cores this made one
ONNX Runtime session 2x slower than an identical one placed elsewhere in the round, and PyTorch eager
~15x slower than alone. Bursts keep the interleaving (machine drift still spreads evenly) but each
session runs `burst` times in a row and the first call of each burst, which pays for its neighbour, is
not timed.
"""

from __future__ import annotations

import math
import time
from typing import Callable


def measure_bursts(fns: dict[str, Callable[[], object]], runs: int = 200, burst: int = 10, warmup: int = 20) -> dict[str, dict]:
    """Latency statistics (as runtime.latency.summarize) of each callable over `runs` timed calls, taken in
    rounds of `burst` consecutive timed calls per callable after one untimed call; `warmup` calls each first."""
    from edgemap.runtime.latency import summarize

    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(math.ceil(runs / burst)):
        for name, fn in fns.items():
            fn()  # pays for the previous session's threads
            for _ in range(burst):
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
    return {name: {**summarize(s), "burst": burst} for name, s in samples.items()}


def time_models(rows: dict[str, tuple[str, str, int]], x1, runs: int = 200, warmup: int = 30) -> dict[str, dict]:  # noqa: ANN001
    """Open each (backend, model path, threads) row, time batch-1 runs of `x1` side by side by bursts, close all."""
    from edgemap.runtime.registry import load_session

    sessions = {}
    try:
        for name, (backend, path, threads) in rows.items():
            sessions[name] = load_session(backend, path, threads)
        return measure_bursts({k: (lambda s=s: s.run(x1, check_finite=False)) for k, s in sessions.items()},
                              runs=runs, warmup=warmup)
    finally:
        for s in sessions.values():
            s.close()
