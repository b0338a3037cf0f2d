"""Side-by-side batch-1 timing of the map's finalists and its comparison rows (bursts: runtime/latency.py)."""

from __future__ import annotations


def time_models(rows: dict[str, tuple[str, str, int]], x1, runs: int = 200, warmup: int = 30) -> dict[str, dict]:  # noqa: ANN001
    """Open each (backend, model path, threads) row, time batch-1 runs of `x1` side by side by bursts, close all."""
    from edgemap.runtime.latency import measure_interleaved
    from edgemap.runtime.registry import load_session

    sessions = {}
    try:
        for name, (backend, path, threads) in rows.items():
            sessions[name] = load_session(backend, path, threads)
        return measure_interleaved({k: (lambda s=s: s.run(x1, check_finite=False)) for k, s in sessions.items()},
                                   runs=runs, warmup=warmup)
    finally:
        for s in sessions.values():
            s.close()
