"""How far to trust a predicted 1-thread vs 2-thread difference: the kernel predictor's held-out error on the
ratio of a sampled graph's 2-thread to 1-thread whole-call time, from the calibration records alone.

Two-fold by configuration (as campaign.heldout_errors): fit on half the sampled graphs, predict the other
half's whole calls at both thread counts, compare the predicted ratio with the measured one. Its median
|error| per precision is the margin within which a choice between thread counts is a tie for the
estimate (benchmarks/estimator_choice.py: such ties go to fewer threads, which leaves a core free).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from edgemap.devices.kernels.campaign import as_samples
from edgemap.devices.kernels.predictor import KernelPredictor
from edgemap.devices.kernels.store import capped


def _per_call(samples: list[dict], calls: list[dict]) -> dict[tuple[int, str, int], tuple[list[dict], dict]]:
    """(cfg, precision, threads) -> (its kernel samples, its call record): the campaign stored each configuration's
    kernels in the order of its calls (precision, then threads), `n` kernels per call."""
    by_cfg: dict[int, list[dict]] = defaultdict(list)
    for s in samples:
        by_cfg[s["cfg"]].append(s)
    out = {}
    for c in calls:
        ks = by_cfg[c["cfg"]]
        out[(c["cfg"], c["prec"], c["threads"])] = (ks[:c["n"]], c)
        by_cfg[c["cfg"]] = ks[c["n"]:]
    return out


def thread_ratio_error(record: dict) -> dict[str, float]:
    """Per precision: median |predicted / measured - 1| of the 2-thread / 1-thread call ratio, held out."""
    samples = as_samples(record["kernels"], record["features"])
    calls = _per_call(samples, record["calls"])
    errs: dict[str, list[float]] = defaultdict(list)
    for fold in (0, 1):
        pred = KernelPredictor(capped([s for s in samples if s["cfg"] % 2 != fold]),
                               [c for c in record["calls"] if c["cfg"] % 2 != fold])
        for (cfg, prec, t), _ in calls.items():
            if cfg % 2 != fold or t != 1 or (cfg, prec, 2) not in calls:
                continue
            p, m = {}, {}
            for tt in (1, 2):
                ks, call = calls[(cfg, prec, tt)]
                times = pred.kernel_times([(s["key"], s["prec"], s["f"]) for s in ks], tt)
                p[tt], m[tt] = pred.call_time(sum(v for v, _ in times), len(ks), tt, prec), call["call_s"]
            errs[prec].append(abs((p[2] / p[1]) / (m[2] / m[1]) - 1))
    return {prec: float(np.median(v)) for prec, v in errs.items()}
