"""Per-kernel-type latency regressors, fitted on sampled kernels, and the whole-call correction.

For each kernel type (see features.shape_class):
- a base cost per thread count, t = a + b*MACs + c*bytes + d*pixels*groups with a, b, c, d >= 0
  (a roofline-like line that extrapolates sensibly beyond the sampled sizes), fitted for relative error;
- a gradient-boosted regressor of log(measured / base) on the feature vector: the
  efficiency effects the line cannot see (channel residues, depthwise, small spatial sizes).
Both are scikit-learn estimators. A kernel type never sampled falls back to a model of all
kernels of its precision, and says so. The call model turns summed kernel times into a
whole-call time: call = c0 + c1 * kernels + sum (the profiler's own per-kernel cost makes c1
negative; c0 is the per-call constant), fitted per thread count on whole sampled-graph runs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from edgemap.devices.kernels.features import vector

MIN_FOR_TREES = 12  # fewer samples of a type: the base line alone
GENERIC_CAP = 800   # samples of all types behind the fallback model of a precision
GBM = {"n_estimators": 100, "max_depth": 3, "learning_rate": 0.08, "subsample": 0.8, "random_state": 0}


@dataclass
class _TypeModel:
    base: dict[int, np.ndarray]   # threads -> [a, b, c, d] of the base line
    scale: np.ndarray             # column scales used when fitting the line
    trees: object | None          # sklearn regressor of log(measured / base), or None


def _line_inputs(feats: list[dict]) -> np.ndarray:
    """[1, MACs, bytes, output pixels x groups]: the last is the per-group, per-pixel work (im2col rows, one
    small GEMM per group) that makes grouped INT8 convolutions with few channels per group slow."""
    return np.array([[1.0, f["macs"], f["in_bytes"] + f["w_bytes"] + f["out_bytes"], f["spatial_out"] * f["groups"]]
                     for f in feats])


def _fit_line(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative coefficients minimising the squared relative error."""
    from scipy.optimize import nnls

    w = 1.0 / y
    coef, _ = nnls(x * w[:, None], y * w)
    return coef


def _fit_type(samples: list[dict]) -> _TypeModel:
    feats = [s["f"] for s in samples]
    y = np.array([s["s"] for s in samples])
    x = _line_inputs(feats)
    scale = np.maximum(x.max(axis=0), 1e-12)
    base: dict[int, np.ndarray] = {}
    for t in sorted({s["threads"] for s in samples}):
        sel = np.array([s["threads"] == t for s in samples])
        base[t] = _fit_line(x[sel] / scale, y[sel])
    model = _TypeModel(base, scale, None)
    if len(samples) >= MIN_FOR_TREES:
        from sklearn.ensemble import GradientBoostingRegressor

        resid = np.log(y / _base_time(model, x, [s["threads"] for s in samples]))
        model.trees = GradientBoostingRegressor(**GBM).fit(np.array([vector(f) for f in feats]), resid)
    return model


def _spread(samples: list[dict], cap: int) -> list[dict]:
    """At most `cap` samples, taken evenly from the list (deterministic)."""
    return samples if len(samples) <= cap else [samples[int(i * len(samples) / cap)] for i in range(cap)]


def _base_time(m: _TypeModel, x: np.ndarray, threads: list[int]) -> np.ndarray:
    known = sorted(m.base)
    coefs = np.array([m.base[min(known, key=lambda k: (abs(k - t), -k))] for t in threads])
    return np.maximum(((x / m.scale) * coefs).sum(axis=1), 1e-8)


class KernelPredictor:
    """Predicts each kernel's time and a whole call's time from sampled measurements."""

    def __init__(self, kernel_samples: list[dict], call_samples: list[dict]) -> None:
        by_key: dict[str, list[dict]] = defaultdict(list)
        by_prec: dict[str, list[dict]] = defaultdict(list)
        for s in kernel_samples:
            by_key[s["key"]].append(s)
            by_prec[s["prec"]].append(s)
        # fitted when first asked for: a model uses a handful of the sampled kernel types
        self._samples = {**by_key, **{f"\0{p}": _spread(v, GENERIC_CAP) for p, v in by_prec.items()}}
        self._fitted: dict[str, _TypeModel] = {}
        self.calls = _fit_calls(call_samples)
        self.n_samples = len(kernel_samples)

    @property
    def types(self) -> set[str]:
        """The sampled kernel types."""
        return {k for k in self._samples if not k.startswith("\0")}

    def _model(self, key: str) -> _TypeModel:
        if key not in self._fitted:
            self._fitted[key] = _fit_type(self._samples[key])
        return self._fitted[key]

    def _generic_key(self, prec: str) -> str:
        return f"\0{prec}" if f"\0{prec}" in self._samples else next(k for k in self._samples if k.startswith("\0"))

    def kernel_times(self, items: list[tuple[str, str, dict]], threads: int) -> list[tuple[float, str]]:
        """(seconds, which regressor) for each (key, precision, features) at `threads` threads."""
        groups: dict[str, list[int]] = defaultdict(list)
        for i, (key, prec, _) in enumerate(items):
            groups[key if key in self._samples and not key.startswith("\0") else self._generic_key(prec)].append(i)
        out: list[tuple[float, str]] = [(0.0, "")] * len(items)
        for gkey, idx in groups.items():
            m = self._model(gkey)
            feats = [items[i][2] | {"threads": threads} for i in idx]
            t = _base_time(m, _line_inputs(feats), [threads] * len(idx))
            if m.trees is not None:
                t = t * np.exp(m.trees.predict(np.array([vector(f) for f in feats])))
            for i, v in zip(idx, t):
                src = items[i][0] if not gkey.startswith("\0") else f"all {items[i][1]} kernels ({items[i][0]} not sampled)"
                out[i] = (float(v), src)
        return out

    def overhead_s(self, key: str, prec: str, threads: int) -> float:
        """The fixed part (base line's intercept) of one kernel of type `key`: its dispatch cost."""
        m = self._model(key if key in self._samples else self._generic_key(prec))
        known = sorted(m.base)
        return float(m.base[min(known, key=lambda k: (abs(k - threads), -k))][0] * m.scale[0])

    def call_constants(self, threads: int, prec: str | None = None) -> tuple[float, float]:
        """(c0, c1) of the call model for `threads` and the model's precision (any precision if not sampled)."""
        keys = [k for k in self.calls if k[1] == prec] or [k for k in self.calls if k[1] is None]
        if not keys:
            return 0.0, 0.0
        return self.calls[min(keys, key=lambda k: (abs(k[0] - threads), -k[0]))]

    def call_time(self, kernel_sum: float, n_kernels: int, threads: int, prec: str | None = None) -> float:
        """Whole-call seconds from the summed kernel predictions."""
        c0, c1 = self.call_constants(threads, prec)
        return max(c0 + c1 * n_kernels + kernel_sum, 0.5 * kernel_sum)


def _fit_calls(samples: list[dict]) -> dict[tuple[int, str | None], tuple[float, float]]:
    """Per thread count and precision (and per thread count over all): call - summed kernel times =
    c0 + c1 * kernels, in relative least squares.

    c0 is the per-call constant (input checks, output allocation, the thread pool's wake-up); c1
    the per-node cost outside the kernels minus the profiler's own cost in each kernel event
    (QDQ graphs' many small kernels change that balance, hence one fit per precision).
    The kernels' sum enters with weight 1: the profiler times them as they run.
    Fitted for the least absolute relative error, not squares: 2-thread calls have a heavy tail
    of slow runs (the other core busy), which pulled a squared fit below the typical call: median
    error on the 2-thread calibration graphs 5.7 -> 3.5 % (FP32), 6.1 -> 3.8 % (INT8), 1 thread
    unchanged (~3 %); see benchmarks/results/estimator_kernels_l1.md for whole networks.
    """
    out = {}
    groups: dict[tuple[int, str | None], list[dict]] = defaultdict(list)
    for s in samples:
        groups[(s["threads"], None)].append(s)
        groups[(s["threads"], s.get("prec"))].append(s)
    for key, sel in groups.items():
        if len(sel) < 4:
            continue
        call = np.array([s["call_s"] for s in sel])
        y = (call - np.array([s["sum_s"] for s in sel])) / call
        x = np.array([[1.0, s["n"]] for s in sel]) / call[:, None]
        coef = _least_absolute(x, y)
        out[key] = (float(coef[0]), float(coef[1]))
    return out


def _least_absolute(x: np.ndarray, y: np.ndarray, rounds: int = 50) -> np.ndarray:
    """Coefficients minimising sum |y - x @ coef| (iteratively reweighted least squares)."""
    w = np.ones(len(y))
    for _ in range(rounds):
        coef, *_ = np.linalg.lstsq(x * w[:, None], y * w, rcond=None)
        w = 1.0 / np.sqrt(np.maximum(np.abs(y - x @ coef), 1e-4))
    return coef
