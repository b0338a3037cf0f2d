"""Time each model the way it will run: alone in a fresh process, at each thread count, in alternating rounds.

Sessions that share one process steal each other's cores (ONNX Runtime spin-waits by default), so
ratios measured side by side swung 2-4x from run to run on a shared machine. Here every
(model, threads) sample is its own interpreter that loads one model, warms it up and times it; the
rounds visit the models in a rotating order so that none always runs first or last. A model's
figure is the median of its round medians at its best thread count, with the spread (the range of
the round medians); two models whose ranges overlap are a tie, and `choose` breaks ties on
accuracy, then size. `time_in_bursts` times the same files in one process, in alternating bursts,
so a caller can check that both ways rank the models alike.

No torch: the worker (`python -m edgemap.runtime.isolated`) imports only the runtime it needs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgemap.errors import EdgemapError


@dataclass(frozen=True)
class Timing:
    """One model at one thread count: round medians (ms per batch) and their summary."""

    name: str
    threads: int
    round_ms: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        """Median over rounds of each round's median."""
        return float(np.median(self.round_ms))

    @property
    def spread_ms(self) -> tuple[float, float]:
        """Lowest and highest round median."""
        return float(min(self.round_ms)), float(max(self.round_ms))

    def to_dict(self) -> dict:
        """JSON-ready form."""
        lo, hi = self.spread_ms
        return {"name": self.name, "threads": self.threads, "median_ms": round(self.median_ms, 4),
                "spread_ms": [round(lo, 4), round(hi, 4)], "round_ms": [round(v, 4) for v in self.round_ms]}


@dataclass(frozen=True)
class IsolatedResult:
    """Every (model, threads) timing, and each model's best thread count."""

    timings: tuple[Timing, ...]
    rounds: int
    runs: int
    evidence: dict = field(default_factory=dict)

    def best(self, name: str) -> Timing:
        """The thread count with the lowest median for `name`."""
        own = [t for t in self.timings if t.name == name]
        if not own:
            raise EdgemapError(f"no timing for {name!r}; timed: {', '.join(sorted({t.name for t in self.timings}))}")
        return min(own, key=lambda t: t.median_ms)

    def names(self) -> list[str]:
        """Timed models in the order given."""
        return list(dict.fromkeys(t.name for t in self.timings))

    def to_dict(self) -> dict:
        """JSON-ready form, with the best thread count per model."""
        return {"rounds": self.rounds, "runs": self.runs, "timings": [t.to_dict() for t in self.timings],
                "best": {n: self.best(n).to_dict() for n in self.names()}, "evidence": self.evidence}


def compare(a: Timing, b: Timing) -> str:
    """'faster' / 'slower' when a's spread lies wholly below / above b's, else 'tie'."""
    (alo, ahi), (blo, bhi) = a.spread_ms, b.spread_ms
    if ahi < blo:
        return "faster"
    if alo > bhi:
        return "slower"
    return "tie"


def speedup_line(a: Timing, b: Timing) -> str:
    """'a ×1.52 (×1.31-1.77) b's speed, faster' — never 'faster' inside the noise."""
    ratio = b.median_ms / a.median_ms
    lo, hi = b.spread_ms[0] / a.spread_ms[1], b.spread_ms[1] / a.spread_ms[0]
    verdict = {"faster": "faster", "slower": "slower", "tie": "a tie (spreads overlap)"}[compare(a, b)]
    return (f"{a.name} ({a.median_ms:.3f} ms, {a.threads} thr) is x{ratio:.2f} (x{lo:.2f}-{hi:.2f}) the speed of "
            f"{b.name} ({b.median_ms:.3f} ms, {b.threads} thr): {verdict}")


def choose(result: IsolatedResult, accuracy: dict[str, float] | None = None,
           size: dict[str, int] | None = None) -> list[str]:
    """Models ranked: by median at the best thread count, but a model tied with a faster one moves ahead of
    it when it is more accurate (then smaller). Returns names, best first."""
    accuracy, size = accuracy or {}, size or {}
    ranked = sorted(result.names(), key=lambda n: result.best(n).median_ms)
    out: list[str] = []
    while ranked:
        head = result.best(ranked[0])
        tied = [n for n in ranked if compare(result.best(n), head) == "tie"]
        pick = max(tied, key=lambda n: (accuracy.get(n, float("-inf")), -size.get(n, 0), -result.best(n).median_ms))
        out.append(pick)
        ranked.remove(pick)
    return out


# --- the parent: one fresh process per sample ------------------------------------------------------
def time_isolated(models: dict[str, str | Path], threads: tuple[int, ...] = (1, 2), rounds: int = 5,
                  runs: int = 100, warmup: int = 20, batch: int = 1, backends: dict[str, str] | None = None,
                  timeout_s: float = 300) -> IsolatedResult:
    """Time every model at every thread count, each sample in its own fresh process, in rotating order."""
    if not models:
        raise EdgemapError("nothing to time: give at least one model")
    if rounds < 1 or runs < 5 or warmup < 0 or batch < 1 or not threads or min(threads) < 0:
        raise EdgemapError(f"need rounds >= 1, runs >= 5, warmup >= 0, batch >= 1, threads >= 0 "
                           f"(got rounds={rounds}, runs={runs}, warmup={warmup}, batch={batch}, threads={threads})")
    for name, path in models.items():
        if not Path(path).is_file():
            raise EdgemapError(f"{name}: model file {path} not found")
    backends = backends or {}
    samples: dict[tuple[str, int], list[float]] = {(n, t): [] for n in models for t in threads}
    jobs = [(n, t) for n in models for t in threads]
    for r in range(rounds):
        shift = r % len(jobs)
        order = jobs[shift:] + jobs[:shift]
        for name, t in (order if r % 2 == 0 else order[::-1]):
            samples[(name, t)].append(_run_worker(models[name], backends.get(name), t, runs, warmup, batch, timeout_s))
    from edgemap.core.evidence import machine_evidence

    timings = tuple(Timing(n, t, tuple(v)) for (n, t), v in samples.items())
    ev = machine_evidence()
    ev["method"] = "one fresh process per (model, threads, round); rotating order; median of round medians"
    return IsolatedResult(timings, rounds, runs, ev)


def _run_worker(path: str | Path, backend: str | None, threads: int, runs: int, warmup: int, batch: int,
                timeout_s: float) -> float:
    cmd = [sys.executable, "-m", "edgemap.runtime.isolated", str(path), backend or "", str(threads), str(runs),
           str(warmup), str(batch)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise EdgemapError(f"{path}: timing process ran past {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise EdgemapError(f"{path}: timing process failed ({tail[:300]})")
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["median_ms"])


# --- the same files in one process, alternating bursts (to check the ranking) -------------------
def time_in_bursts(models: dict[str, str | Path], threads: int = 1, rounds: int = 5, runs: int = 50,
                   warmup: int = 10, batch: int = 1, backends: dict[str, str] | None = None) -> IsolatedResult:
    """All sessions loaded in this process; each round runs a burst of `runs` per model, in rotating order."""
    from edgemap.runtime.registry import load_session

    backends = backends or {}
    sessions = {n: load_session(backends.get(n), p, threads) for n, p in models.items()}
    inputs = {n: worker_input(s, batch) for n, s in sessions.items()}
    samples: dict[str, list[float]] = {n: [] for n in models}
    names = list(models)
    try:
        for n in names:
            for _ in range(warmup):
                sessions[n].run(inputs[n], check_finite=False)
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for n in order:
                samples[n].append(float(np.median(_time_runs(sessions[n], inputs[n], runs))))
    finally:
        for s in sessions.values():
            s.close()
    from edgemap.core.evidence import machine_evidence

    ev = machine_evidence(threads)
    ev["method"] = "all sessions in one process; alternating bursts; median of burst medians"
    return IsolatedResult(tuple(Timing(n, threads, tuple(v)) for n, v in samples.items()), rounds, runs, ev)


def same_ranking(a: IsolatedResult, b: IsolatedResult) -> bool:
    """True when no pair of models is strictly ordered one way in `a` and the other way in `b`."""
    names = [n for n in a.names() if n in b.names()]
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            va, vb = compare(a.best(x), a.best(y)), compare(b.best(x), b.best(y))
            if {va, vb} == {"faster", "slower"}:
                return False
    return True


# --- the worker ---------------------------------------------------------------------------------
def worker_input(session, batch: int) -> np.ndarray:  # noqa: ANN001 - runtime Session
    """A seeded random input for input 0 (free axes: batch, then 1; a fixed batch axis is kept)."""
    spec = session.inputs()[0]
    dims = list(spec.shape)
    dims[0] = dims[0] or batch
    shape = [d if d is not None else 1 for d in dims]
    x = np.random.default_rng(0).standard_normal(shape)
    return x.astype(spec.dtype) if np.issubdtype(np.dtype(spec.dtype), np.floating) else x.clip(0, 1).astype(spec.dtype)


def _time_runs(session, x: np.ndarray, runs: int) -> list[float]:  # noqa: ANN001 - runtime Session
    out = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        session.run(x, check_finite=False)
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def _worker(argv: list[str]) -> None:
    path, backend, threads, runs, warmup, batch = argv[0], argv[1] or None, *map(int, argv[2:6])
    from edgemap.runtime.registry import load_session

    with load_session(backend, path, threads) as session:
        x = worker_input(session, batch)
        for _ in range(warmup):
            session.run(x, check_finite=False)
        ms = _time_runs(session, x, runs)
    print(json.dumps({"median_ms": float(np.median(ms)), "p10_ms": float(np.percentile(ms, 10)),
                      "p90_ms": float(np.percentile(ms, 90)), "runs": runs}))


if __name__ == "__main__":
    try:
        _worker(sys.argv[1:])
    except EdgemapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
