"""Evaluate one candidate: build its model (its compiled recipe, through the recipe runner), measure accuracy and
host latency, estimate the device cost.

`evaluate_one(context, candidate)` returns the candidate's TrialMetrics; a failure to build or run a
candidate is returned as its `error`, not raised, so one bad candidate never stops the search.
"""

from __future__ import annotations

import time
import traceback
from functools import lru_cache
from pathlib import Path

import numpy as np

from edgemap.errors import EdgemapError
from edgemap.search.candidate import Candidate
from edgemap.search.records import SearchContext, TrialMetrics


@lru_cache(maxsize=4)
def eval_arrays(npz_path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Preprocessed evaluation inputs, labels and exact-mask, prepared once by the driver."""
    with np.load(npz_path, allow_pickle=False) as z:
        return z["x"], z["labels"], z["lossless"]


def accuracy(session, x: np.ndarray, labels: np.ndarray, exact: np.ndarray) -> tuple[float, float | None, np.ndarray]:  # noqa: ANN001
    """Top-1 (all, exact subset) of a session on preprocessed inputs; batches of 100 (or the fixed batch)."""
    fixed = session.inputs()[0].shape[0]
    step = fixed or 100
    preds = np.concatenate([session.run(x[i:i + step]).argmax(1) for i in range(0, len(x), step)])
    correct = preds == labels
    return float(correct.mean() * 100), (float(correct[exact].mean() * 100) if exact.any() else None), preds


MAX_CONFUSION_CLASSES = 100  # a candidate keeps its confusion matrix (for the report) up to this many classes


def confusion_counts(labels: np.ndarray, preds: np.ndarray) -> list[list[int]] | None:
    """Rows: true class, columns: predicted; None past MAX_CONFUSION_CLASSES (results.json stays small)."""
    n = int(max(labels.max(initial=0), preds.max(initial=0))) + 1
    if n > MAX_CONFUSION_CLASSES:
        return None
    cm = np.zeros((n, n), np.int64)
    np.add.at(cm, (labels.astype(np.int64), preds.astype(np.int64)), 1)
    return cm.tolist()


def host_latency(session, x1: np.ndarray, runs: int) -> dict:  # noqa: ANN001
    """Batch-1 latency on this host (p50/p90/p99 ms) after a warm-up."""
    from edgemap.runtime.latency import measure_interleaved

    return measure_interleaved({"m": lambda: session.run(x1, check_finite=False)}, runs=runs, warmup=max(5, runs // 10))["m"]


def build_candidate(ctx: SearchContext, c: Candidate):  # noqa: ANN201 - edgemap.pipeline.recipe.Built
    """Build the candidate's model with the recipe runner `edgemap run` uses (outputs cached by parent + config)."""
    from edgemap.pipeline.context import recipe_context
    from edgemap.pipeline.recipe import build
    from edgemap.search.compile import candidate_recipe

    recipe = candidate_recipe(ctx.recipe, c, ctx.settings)
    pctx, _ = recipe_context(recipe, progress=ctx.progress, parity_n=ctx.parity_n)
    return build(recipe, Path(ctx.work_dir) / "trials" / c.artifact_key(), pctx, ctx.cache_dir)


def estimation_onnx(ctx: SearchContext, built, c: Candidate) -> Path:  # noqa: ANN001 - Built
    """The ONNX graph the device estimate reads: the candidate's last ONNX step, or (LiteRT, converted from torch)
    the same candidate built for ONNX Runtime at its precision."""
    onnx_steps = [a for a in built.artifact.lineage() if a.format == "onnx" and a.precision == c.precision]
    if onnx_steps:
        return Path(onnx_steps[-1].path)
    import dataclasses

    return Path(build_candidate(ctx, dataclasses.replace(c, backend="onnxruntime")).artifact.path)


def device_estimate(ctx: SearchContext, c: Candidate, onnx_path: Path) -> dict:
    """Estimated latency, energy, RAM and flash on the target device, from the candidate's ONNX graph,
    on the candidate's thread count (the estimator's default, all cores, would make every thread count look alike)
    and for the candidate's runtime (OpenVINO and LiteRT have their own predictors where calibrated)."""
    from edgemap.devices.catalogue import resolve
    from edgemap.devices.estimate import estimate

    return estimate(onnx_path, resolve(ctx.device), threads=c.threads, backend=c.backend).to_dict()


def evaluate_one(ctx: SearchContext, c: Candidate) -> TrialMetrics:
    """Metrics of one candidate (see module doc); never raises for a candidate-specific failure."""
    t0 = time.perf_counter()
    try:
        return TrialMetrics(c, **_measure(ctx, c), eval_s=round(time.perf_counter() - t0, 2))
    except EdgemapError as exc:
        return TrialMetrics(c, error=str(exc))
    except Exception as exc:  # a library failure on one candidate: record it, keep searching
        return TrialMetrics(c, error=f"{exc.__class__.__name__}: {exc}".splitlines()[0][:300],
                            traceback=traceback.format_exc(limit=3))


def _measure(ctx: SearchContext, c: Candidate) -> dict:
    """TrialMetrics' figures for a candidate that builds and runs."""
    from edgemap.runtime.registry import load_session

    built = build_candidate(ctx, c)
    path = Path(built.artifact.path)
    x, labels, exact = eval_arrays(ctx.eval_npz)
    session = load_session(c.backend, path, c.threads)
    try:
        top1, top1_exact, preds = accuracy(session, x, labels, exact)
        lat = host_latency(session, x[:1].copy(), ctx.latency_runs)
    finally:
        session.close()
    est = device_estimate(ctx, c, estimation_onnx(ctx, built, c))
    on_host = ctx.device_is_host
    return {
        "model_path": str(path), "sha256": built.artifact.sha256, "accuracy": top1, "accuracy_exact": top1_exact,
        "accuracy_drop": ctx.baseline_accuracy - top1, "host_latency": lat,
        "latency_ms": lat["p50_ms"] if on_host else est["latency_s"]["value"] * 1000,
        "latency_basis": "measured on this host" if on_host else "estimated for the device",
        "energy_mj": est["energy_j"]["value"] * 1000, "ram_bytes": est["peak_ram_bytes"]["value"],
        "size_bytes": built.artifact.size_bytes(), "confusion": confusion_counts(labels, preds),
        "device_violations": tuple(est["violations"]), "estimate": {k: est[k] for k in ("latency_s", "energy_j", "energy_ops_j",
                                                                                  "peak_ram_bytes", "flash_bytes", "unit")},
    }
