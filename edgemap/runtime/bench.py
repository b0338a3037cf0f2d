"""Benchmark harness: latency spread, throughput at several batch sizes, cold start and peak memory.

Steady-state latency of all candidates is measured in one process, interleaved (see latency.py),
so their ratios are fair. Cold start and peak resident memory are measured per model in a fresh
subprocess (`python -m edgemap.runtime.coldstart`), where nothing else has been loaded. No torch
is imported here; the torch backend imports it only when a .safetensors model is benchmarked.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemap.core.evidence import machine_evidence, versions
from edgemap.errors import EdgemapError
from edgemap.runtime.formats import backend_for
from edgemap.runtime.latency import measure_interleaved
from edgemap.runtime.registry import load_session


@dataclass(frozen=True)
class Candidate:
    """One model file and the backend that runs it; `label` names it in tables."""

    path: Path
    backend: str
    label: str

    @classmethod
    def of(cls, path: str | Path, backend: str | None = None) -> "Candidate":
        path = Path(path)
        if not path.is_file():
            raise EdgemapError(f"{path}: model file not found")
        backend = backend or backend_for(path)
        return cls(path, backend, f"{path.name} [{backend}]")


def file_size(path: Path) -> int:
    """Bytes on disk, counting an OpenVINO IR's .bin with its .xml."""
    extra = path.with_suffix(".bin") if path.suffix == ".xml" else None
    return path.stat().st_size + (extra.stat().st_size if extra and extra.is_file() else 0)


def input_batch(session, batch: int, seed: int = 0) -> np.ndarray:  # noqa: ANN001 - Session
    """A seeded random batch matching input 0 of `session` (the batch axis set to `batch`)."""
    spec = session.inputs()[0]
    shape = (batch, *[d if d is not None else 1 for d in spec.shape[1:]])
    return np.random.default_rng(seed).standard_normal(shape).astype(spec.dtype)


def cold_start(c: Candidate, threads: int, timeout_s: float = 300) -> dict:
    """Load + first inference and peak RSS, measured in a fresh interpreter."""
    cmd = [sys.executable, "-m", "edgemap.runtime.coldstart", str(c.path), c.backend, str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise EdgemapError(f"{c.path}: cold-start run failed ({tail[:300]})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _latency_batch(session) -> int:  # noqa: ANN001 - Session
    """Batch 1, or the model's own batch when it is fixed (a fixed-batch-8 model cannot run one image)."""
    return session.inputs()[0].shape[0] or 1


def _throughput(sessions: dict, batches: tuple[int, ...], runs: int, warmup: int) -> dict[str, dict]:
    """Images per second at each batch size (interleaved), from the median batch latency."""
    out: dict[str, dict] = {label: {} for label in sessions}
    for b in batches:
        fns = {}
        for label, s in sessions.items():
            x = input_batch(s, b)
            fixed = s.inputs()[0].shape[0]
            if fixed is not None and fixed != b:
                out[label][str(b)] = None  # a fixed-batch model cannot run this batch size
                continue
            fns[label] = lambda s=s, x=x: s.run(x, check_finite=False)
        for label, stats in measure_interleaved(fns, runs=runs, warmup=warmup).items():
            out[label][str(b)] = {"images_per_s": round(b / (stats["p50_ms"] / 1000), 1), "p50_ms": stats["p50_ms"]}
    return out


def benchmark(candidates: list[Candidate], threads: int = 1, runs: int = 200, warmup: int = 20,
              batches: tuple[int, ...] = (1, 8, 32), cold: bool = True) -> dict:
    """Benchmark `candidates` side by side; returns a JSON-ready dict with the machine evidence."""
    if runs < 10 or warmup < 0:
        raise EdgemapError(f"need runs >= 10 and warmup >= 0 (got runs={runs}, warmup={warmup})")
    sessions = {c.label: load_session(c.backend, c.path, threads) for c in candidates}
    t0 = time.perf_counter()
    fns = {label: (lambda s=s, x=input_batch(s, _latency_batch(s)): s.run(x, check_finite=False))
           for label, s in sessions.items()}
    latency = measure_interleaved(fns, runs=runs, warmup=warmup)
    throughput = _throughput(sessions, batches, max(10, runs // 4), max(2, warmup // 4))
    rows = []
    for c in candidates:
        row = {"model": str(c.path), "label": c.label, "backend": c.backend, "file_bytes": file_size(c.path),
               "threads": threads, "latency_batch": _latency_batch(sessions[c.label]), "latency": latency[c.label],
               "throughput": throughput[c.label]}
        row["p99_over_p50"] = round(row["latency"]["p99_ms"] / row["latency"]["p50_ms"], 2)
        if cold:
            row["cold_start"] = cold_start(c, threads)
        rows.append(row)
    for s in sessions.values():
        s.close()
    fastest = min(rows, key=lambda r: r["latency"]["p50_ms"])["label"]
    return {"results": rows, "fastest_p50": fastest, "runs": runs, "warmup": warmup, "batches": list(batches),
            "interleaved": True, "wall_s": round(time.perf_counter() - t0, 1), "evidence": evidence(threads)}


def evidence(threads: int) -> dict:
    """machine_evidence plus the converter/quantizer versions that shape the benchmarked files."""
    ev = machine_evidence(threads)
    ev["versions"].update(versions(("onnxslim", "nncf", "litert-torch", "ai-edge-quantizer", "psutil")))
    return ev
