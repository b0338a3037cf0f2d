"""Per-layer roofline latency, and the fit of its efficiency factors to measured latencies.

time(layer) = max(2*MACs / (peak[dtype] * eff[kind] * speed-up), bytes / (bandwidth * eff_memory))
              + per-layer dispatch cost (+ a per-thread synchronisation cost).

A data type the unit does not compute natively (FP16 on a CPU without FP16 arithmetic) runs
in FP32 with conversions: FP32 arithmetic plus the extra traffic of converting activations.
`eff_memory` is relative to the DRAM bandwidth in the profile, so it exceeds 1 when a small
model's working set stays in cache (the usual case at batch 1 on a desktop-class CPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgemap.devices.graph import GraphCost, Layer
from edgemap.devices.profile import ComputeUnit

KINDS = ("conv", "depthwise", "gemm", "memory")
CONVERT_TRAFFIC = 3.0  # emulated FP16: read 2 B + write 4 B per element in, and back out: 3x the FP16 bytes


@dataclass(frozen=True)
class Params:
    """The fitted (or assumed) factors of the latency model."""

    conv: float
    depthwise: float
    gemm: float
    memory: float
    per_layer_s: float
    per_thread_layer_s: float
    parallel_efficiency: float
    int8: float = 1.0

    def as_list(self) -> list[float]:
        return [self.conv, self.depthwise, self.gemm, self.memory, self.per_layer_s, self.per_thread_layer_s,
                self.parallel_efficiency, self.int8]


def params_of(unit: ComputeUnit, fallback: Params) -> Params:
    """The unit's calibration as Params, or `fallback` when the profile has none."""
    c = unit.calibration
    if c is None:
        return fallback
    return Params(c.conv, c.depthwise, c.gemm, c.memory, c.per_layer_s, c.per_thread_layer_s, c.parallel_efficiency, c.int8)


def layer_time(layer: Layer, unit: ComputeUnit, bandwidth: float, p: Params, threads: int) -> tuple[float, str]:
    """(seconds, what bounds it: compute / memory / overhead) for one layer on `threads` cores of `unit`."""
    if layer.kind == "free":
        return 0.0, "free"
    native = layer.dtype in unit.dtypes or layer.dtype == "fp32"
    dtype = layer.dtype if native else "fp32"
    per_core = unit.peak_ops.get(dtype, unit.peak_ops["fp32"]).value / unit.cores
    speed = 1.0 + (min(threads, unit.cores) - 1) * p.parallel_efficiency
    eff = getattr(p, layer.kind) if layer.kind != "memory" else 1.0
    eff *= p.int8 if dtype == "int8" else 1.0  # integer kernels requantize: a lower share of the INT8 peak
    compute = 2.0 * layer.macs / (per_core * speed * eff) if layer.macs else 0.0
    moved = layer.bytes_moved
    overhead = p.per_layer_s + (threads - 1) * p.per_thread_layer_s
    if not native:
        moved += CONVERT_TRAFFIC * (layer.bytes_moved - layer.weight_bytes)
        overhead *= 2  # the conversion is a layer of its own
    memory = moved / (bandwidth * p.memory)
    bound = "compute" if compute >= memory else "memory"
    if overhead > max(compute, memory):
        bound = "overhead"
    return max(compute, memory) + overhead, bound


def graph_time(cost: GraphCost, unit: ComputeUnit, bandwidth: float, p: Params, threads: int) -> float:
    """Seconds for one inference: the layers run one after another."""
    return sum(layer_time(layer, unit, bandwidth, p, threads)[0] for layer in cost.layers)


# -- fitting ---------------------------------------------------------------------------------
_BOUNDS = [(0.01, 1.5), (0.005, 1.5), (0.01, 1.5), (0.05, 50.0), (0.0, 1e-3), (0.0, 1e-3), (0.0, 1.0), (0.05, 2.0)]


def _loss(p: Params, samples: list[tuple[GraphCost, int, float]], unit: ComputeUnit, bw: float, prior: Params) -> float:
    """Mean squared log error, plus a weak pull towards `prior` for factors the samples barely constrain."""
    err = [math.log(graph_time(c, unit, bw, p, t) / m) ** 2 for c, t, m in samples]
    pull = sum(math.log((a + 1e-7) / (b + 1e-7)) ** 2 for a, b in zip(p.as_list()[:4], prior.as_list()[:4]))
    return sum(err) / len(err) + 1e-3 * pull


def fit(samples: list[tuple[GraphCost, int, float]], unit: ComputeUnit, bandwidth: float, start: Params,
        restarts: int = 4) -> Params:
    """Fit Params to (graph, threads, measured seconds) samples by coordinate search in log space.

    Dependency-free and robust to the max() in the roofline; restarting with a wide step lets
    correlated factors (threads' speed-up vs. their overhead) move together. Cheap: thousands
    of evaluations of a sum over layers.
    """
    best = start.as_list()
    best_loss = _loss(Params(*best), samples, unit, bandwidth, start)
    for _ in range(restarts):
        best, best_loss = _descend(best, best_loss, samples, unit, bandwidth, start)
    return Params(*best)


def _descend(best: list[float], best_loss: float, samples: list, unit: ComputeUnit, bandwidth: float,
             prior: Params) -> tuple[list[float], float]:
    """One coordinate search: try moves on each factor, keep improvements, shrink the step when stuck."""
    step = 2.0
    for _ in range(200):
        improved = False
        for i, (lo, hi) in enumerate(_BOUNDS):
            for trial in _moves(best[i], step, lo, hi):
                cand = best[:i] + [trial] + best[i + 1:]
                loss = _loss(Params(*cand), samples, unit, bandwidth, prior)
                if loss < best_loss - 1e-12:
                    best, best_loss, improved = cand, loss, True
        if not improved:
            step = math.sqrt(step)
            if step < 1.002:
                break
    return best, best_loss


def _moves(x: float, step: float, lo: float, hi: float) -> list[float]:
    """Candidate values around x: multiplicative steps, plus additive ones so zero can be left."""
    span = (hi - lo) * (step - 1.0) * 0.05
    cands = [x * step, x / step, x + span, x - span]
    return [min(hi, max(lo, c)) for c in cands]
