"""The host's kernel-sampling campaign: measure sampled kernels, then sample more where the fit is poor.

1. Random block configurations (sampler.random_config), each built FP32 and QDQ INT8, each
   profiled at every thread count: one kernel sample per kernel of ONNX Runtime's optimised
   graph, and one whole-call sample per graph (for the per-node and per-call constants).
2. Adaptive rounds: a two-fold fit (configurations split by index parity) gives each kernel
   type's held-out error; the configurations that produced the worst-predicted kernels of the
   types whose median error is high get neighbours (one size changed), duplicates dropped.
Everything runs under a wall-clock budget; never a whole test network.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Callable

import numpy as np

from edgemap.devices.kernels import sampler
from edgemap.devices.kernels.features import FEATURES, features, precision, shape_class
from edgemap.devices.kernels.predictor import KernelPredictor
from edgemap.devices.kernels.profiling import profile_model
from edgemap.errors import EdgemapError

HIGH_ERROR = 0.08      # a kernel type above this held-out median |error| gets more samples
ADAPTIVE_SHARE = 0.4   # of the budget spent on adaptive rounds
ROUND_SIZE = 40        # neighbours per adaptive round
RUNS, WARMUP = 40, 5   # profiled runs per sampled graph


def measure_config(cfg: dict, cfg_id: int, precisions: tuple[str, ...], threads: tuple[int, ...]) -> tuple[list, list]:
    """Kernel samples [key, prec, threads, seconds, features, cfg_id] and call samples of one configuration."""
    kernels, calls = [], []
    for prec in precisions:
        model = sampler.build(cfg if prec == "fp32" else cfg | {"bn": False})
        blob = model.SerializeToString() if prec == "fp32" else sampler.quantize(model)
        for t in threads:
            p = profile_model(blob, t, runs=RUNS, warmup=WARMUP)
            for k, s in zip(p.kernels, p.kernel_s):
                f = features(k, t)
                kernels.append([shape_class(k), precision(k), t, s, [round(float(f[n]), 6) for n in FEATURES], cfg_id])
            calls.append({"threads": t, "prec": prec, "n": len(p.kernels), "sum_s": float(sum(p.kernel_s)),
                          "call_s": p.call_s, "spread": round(p.call_spread, 4), "cfg": cfg_id})
    return kernels, calls


def as_samples(rows: list, names: list[str] | tuple[str, ...] = FEATURES) -> list[dict]:
    """Stored kernel rows (feature values in the order of `names`) as the predictor's sample dicts."""
    missing = set(FEATURES) - set(names)
    if missing:
        raise EdgemapError(f"kernel records lack feature(s) {', '.join(sorted(missing))} this edgemap predicts with; "
                           "re-run edgemap devices calibrate-host")
    return [{"key": r[0], "prec": r[1], "threads": r[2], "s": r[3], "f": dict(zip(names, r[4])), "cfg": r[5]} for r in rows]


def heldout_errors(samples: list[dict], calls: list[dict]) -> tuple[dict[str, float], list[tuple[float, int]]]:
    """Two-fold (configuration parity) median |relative error| per kernel type, and (error, cfg) per kernel."""
    per_key: dict[str, list[float]] = defaultdict(list)
    worst: list[tuple[float, int]] = []
    for fold in (0, 1):
        train = [s for s in samples if s["cfg"] % 2 != fold]
        test = [s for s in samples if s["cfg"] % 2 == fold]
        if not train or not test:
            continue
        pred = KernelPredictor(train, [c for c in calls if c["cfg"] % 2 != fold])
        for th in sorted({s["threads"] for s in test}):
            sel = [s for s in test if s["threads"] == th]
            for s, (t, _) in zip(sel, pred.kernel_times([(s["key"], s["prec"], s["f"]) for s in sel], th)):
                err = abs(t - s["s"]) / s["s"]
                per_key[s["key"]].append(err)
                worst.append((err, s["cfg"]))
    return {k: float(np.median(v)) for k, v in per_key.items()}, worst


def neighbour(cfg: dict, rng: np.random.Generator) -> dict:
    """`cfg` with one size or option changed to an adjacent sampled value."""
    numeric = {"cin": sampler.CHANNELS, "cout": sampler.CHANNELS, "c": sampler.CHANNELS, "c1": sampler.CHANNELS,
               "c2": sampler.CHANNELS, "hw": sampler.SIZES, "n_out": sampler.CHANNELS}
    keys = [k for k in cfg if k in numeric]
    if not keys:
        return sampler.random_config(rng)
    key = str(rng.choice(keys))
    values = numeric[key]
    i = min(range(len(values)), key=lambda j: abs(values[j] - cfg[key]))
    out = cfg | {key: values[int(np.clip(i + rng.choice((-2, -1, 1, 2)), 0, len(values) - 1))]}
    if out.get("groups") == "dw":
        out["cout"] = out["cin"] = out[key]
    if out.get("groups") == "grouped" and (out["cin"] % out.get("g", 4) or out["cout"] % out.get("g", 4)):
        return cfg
    if out["kind"] == "conv" and (out["hw"] < out["k"] or sampler.conv_macs(out) > sampler.MAX_MACS):
        return cfg
    return out


def run_campaign(budget_s: float = 420.0, threads: tuple[int, ...] = (1, 2), precisions: tuple[str, ...] = ("fp32", "int8"),
                 seed: int = 0, log: Callable[[str], None] = lambda s: None) -> dict:
    """Sample, measure and adaptively extend within `budget_s` seconds; the record to store."""
    rng = np.random.default_rng(seed)
    start = time.monotonic()
    configs: list[dict] = []
    seen: set[str] = set()
    kernels: list = []
    calls: list = []
    rounds = []

    def add(cfg: dict) -> None:
        sig = sampler.signature(cfg)
        if sig in seen:
            return
        seen.add(sig)
        k, c = measure_config(cfg, len(configs), precisions, threads)
        configs.append(cfg)
        kernels.extend(k)
        calls.extend(c)

    initial_end = budget_s * (1 - ADAPTIVE_SHARE)
    while time.monotonic() - start < initial_end:
        add(sampler.random_config(rng))
    log(f"initial sampling: {len(configs)} configurations, {len(kernels)} kernel samples")
    while time.monotonic() - start < budget_s:
        key_err, worst = heldout_errors(as_samples(kernels), calls)
        high = {k: round(e, 3) for k, e in key_err.items() if e > HIGH_ERROR}
        bad_cfgs = [c for e, c in sorted(worst, reverse=True)[: ROUND_SIZE * 2]]
        before = len(configs)
        for cid in bad_cfgs[:ROUND_SIZE]:
            if time.monotonic() - start >= budget_s:
                break
            add(neighbour(configs[cid], rng))
        rounds.append({"high_error_types": high, "added": len(configs) - before, "dropped_duplicates": ROUND_SIZE - (len(configs) - before)})
        log(f"adaptive round {len(rounds)}: {len(high)} kernel type(s) above {HIGH_ERROR:.0%} held-out error, "
            f"{len(configs) - before} configurations added")
    return {"configs": configs, "kernels": kernels, "calls": calls, "rounds": rounds,
            "elapsed_s": round(time.monotonic() - start, 1), "budget_s": budget_s, "threads": list(threads),
            "precisions": list(precisions), "features": list(FEATURES)}
