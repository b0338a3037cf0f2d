"""How far to trust a predicted 1-thread vs 2-thread difference: the kernel predictor's held-out error on the
ratio of a sampled graph's 2-thread to 1-thread whole-call time, from the calibration records alone.

Two-fold by configuration (as campaign.heldout_errors): fit on half the sampled graphs, predict the other
half's whole calls at both thread counts, compare the predicted ratio with the measured one. Its median
|error| per precision is the margin within which a choice between thread counts is a tie for the
estimate (benchmarks/estimator_choice.py: such ties go to fewer threads, which leaves a core free).

The same held-out ratio error is computed for the OpenVINO and LiteRT whole-call lines (backend_ratio_error), and
`estimate_margins(device, backend)` gives, per precision, the margin of the predictor an estimate for that device
and runtime comes from (the device's own records, else the host's): the search's tie band (search/estimate_ties.py).
Calibration stores them in the record ("tie_margins"): the kernel fit takes tens of seconds, too long for a search.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from pathlib import Path

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


def backend_ratio_error(graphs: list[dict]) -> dict[str, float]:
    """Per precision: median |predicted / measured - 1| of the 2-thread / 1-thread call ratio of an OpenVINO or LiteRT
    record's sampled graphs, two-fold by configuration as thread_ratio_error (a fold too small to fit is skipped)."""
    from edgemap.devices.kernels.backends import BackendPredictor, graph_features

    errs: dict[str, list[float]] = defaultdict(list)
    for fold in (0, 1):
        pred = BackendPredictor("", [g for g in graphs if g["cfg"] % 2 != fold])
        for g in graphs:
            t = g["times"]
            if g["cfg"] % 2 != fold or "1" not in t or "2" not in t or any((g["prec"], n) not in pred.coefs for n in (1, 2)):
                continue
            p = {n: pred.predict(graph_features(g["kernels"][str(n)]), g["prec"], n) for n in (1, 2)}
            if p[1] > 0 and t["1"] > 0:
                errs[g["prec"]].append(abs((p[2] / p[1]) / (t["2"] / t["1"]) - 1))
    return {prec: float(np.median(v)) for prec, v in errs.items()}


def estimate_margins(device: str, backend: str = "onnxruntime") -> dict[str, float]:
    """Per precision, the held-out 2-thread / 1-thread ratio error of the predictor that estimates `backend` on
    `device` (its own records where it has them, else the host's, which scaled estimates start from); {} when
    there are no records (the estimate is then the roofline's, whose error is not known here)."""
    from edgemap.devices.kernels.device import HOST, records_path

    if backend == "onnxruntime":
        path = records_path(device) or records_path(HOST)
        return dict(_kernel_margins(str(path), path.stat().st_mtime_ns, device)) if path else {}
    from edgemap.devices.kernels.backends import SUFFIX
    from edgemap.devices.kernels.device import _beside

    path = _beside(device, SUFFIX) or _beside(HOST, SUFFIX)
    return dict(_backend_margins(str(path), path.stat().st_mtime_ns, backend, device)) if path else {}


@lru_cache(maxsize=8)
def _kernel_margins(path: str, mtime: int, device: str) -> tuple:  # noqa: ARG001 - mtime keys the cache
    from edgemap.devices.kernels.store import isa_tag, read_records

    records = read_records(Path(path))
    tag = isa_tag() if isa_tag() in records else next(iter(records), None)
    if not tag:
        return ()
    return tuple((records[tag].get("tie_margins") or thread_ratio_error(records[tag])).items())  # stored at calibration


@lru_cache(maxsize=8)
def _backend_margins(path: str, mtime: int, backend: str, device: str) -> tuple:  # noqa: ARG001
    from edgemap.devices.kernels.backends import backend_isa_tag, read_backend_records

    records = read_backend_records(Path(path))
    tag = backend_isa_tag(backend)
    rec = records.get(tag, {}).get(backend) or next((r[backend] for r in records.values() if backend in r), None)
    return tuple((rec.get("tie_margins") or backend_ratio_error(rec["graphs"])).items()) if rec else ()
