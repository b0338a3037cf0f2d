"""Side-by-side batch-1 timing of the map's finalists and its comparison rows (bursts: runtime/latency.py)."""

from __future__ import annotations


def time_models(rows: dict[str, tuple[str, str, int]], x1, runs: int = 200, warmup: int = 30,  # noqa: ANN001
                rounds: int = 1) -> dict[str, dict]:
    """Open each (backend, model path, threads) row, time batch-1 runs of `x1` side by side by bursts, close all.

    rounds > 1 repeats the whole interleaved run and keeps, per row, the round with the median p50 (all the
    rounds' p50s are kept too): a multi-threaded session on a small machine can spend a whole run in a slow or
    a fast mode, depending on whether another session's worker threads still spin."""
    from edgemap.runtime.latency import measure_interleaved
    from edgemap.runtime.registry import load_session

    sessions = {}
    try:
        for name, (backend, path, threads) in rows.items():
            sessions[name] = load_session(backend, path, threads)
        fns = {k: (lambda s=s: s.run(x1, check_finite=False)) for k, s in sessions.items()}
        per_round = [measure_interleaved(fns, runs=runs, warmup=warmup) for _ in range(max(1, rounds))]
    finally:
        for s in sessions.values():
            s.close()
    return {name: _median_round([r[name] for r in per_round]) for name in rows}


def _median_round(stats: list[dict]) -> dict:
    """The statistics of the round whose p50 is the median, with every round's p50."""
    middle = dict(sorted(stats, key=lambda st: st["p50_ms"])[len(stats) // 2])
    if len(stats) > 1:
        middle["p50_ms_rounds"] = [st["p50_ms"] for st in stats]
    return middle
