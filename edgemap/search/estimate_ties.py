"""The search's choice when its objective is an estimate (latency on a device that is not this host; energy, which is
board power times the estimated latency, on any): estimates that lie within the predictor's own error of each other
are ties, not a ranking.

The band of a candidate is the held-out 2-thread / 1-thread ratio error of the predictor its estimate came from
(edgemap/devices/kernels/uncertainty.py: ONNX Runtime's kernel predictor, or OpenVINO's / LiteRT's whole-call line;
per precision, from the calibration records alone). Two candidates are tied when the slower estimate exceeds the
faster by no more than the larger of their bands. Among the candidates tied with the lowest estimate the choice goes
to the higher accuracy, then the smaller file, then fewer threads (a core left free), then the lower estimate.
A candidate whose estimate is the per-layer roofline's (no kernel records for that runtime or unit) has no known
error: it is never tied, and the choice says so. Measured latencies (the host) keep the timing rule of robust.py.
"""

from __future__ import annotations

from typing import Sequence

from edgemap.search.records import TrialMetrics

RULE = "estimates: ties within the latency estimate's held-out error go to accuracy, then size, then fewer threads"


def on_estimates(trials: Sequence[TrialMetrics], key: str) -> bool:
    """True when the objective is an estimate: latency on a device that is not this host, or energy (board power
    times the estimated latency, on any device: its relative error is the latency estimate's)."""
    ok = [m for m in trials if m.ok]
    if not ok or key not in ("latency_ms", "energy_mj"):
        return False
    if key == "energy_mj":
        return all("estimated latency" in str((m.estimate.get("energy_j") or {}).get("how", "")) for m in ok)
    return all((m.latency_basis or "").startswith("estimated") for m in ok)


def band_of(m: TrialMetrics, device: str) -> float | None:
    """The relative tie band of `m`'s estimate, or None when its predictor's error is not known (the roofline's)."""
    from edgemap.devices.kernels.uncertainty import estimate_margins

    how = str((m.estimate.get("latency_s") or {}).get("how", ""))
    if "kernel-level" not in how and "whole-call" not in how:
        return None
    return estimate_margins(device, m.candidate.backend).get(m.candidate.precision)


def bands(trials: Sequence[TrialMetrics], device: str) -> list[float]:
    """Per trial, its band (0 where unknown), in order: the tolerance pareto_front takes for the latency objective."""
    return [band_of(m, device) or 0.0 for m in trials]


def tied(a: float, b: float, band_a: float, band_b: float) -> bool:
    """Whether two estimates lie within the larger of their bands of each other (the slower over the faster)."""
    lo, hi = min(a, b), max(a, b)
    return hi <= lo * (1.0 + max(band_a, band_b))


def choose_on_estimates(feasible: Sequence[TrialMetrics], key: str, device: str) -> tuple[TrialMetrics, dict]:
    """The chosen candidate among `feasible` (not empty) and the choice's record for results.json (see module doc)."""
    lowest = min(feasible, key=lambda m: (m.value(key), -m.accuracy))
    band = {m.key: band_of(m, device) for m in feasible}
    if band[lowest.key] is None:
        return lowest, _record(lowest, lowest, [lowest], band, device)
    group = [m for m in feasible if band[m.key] is not None
             and tied(m.value(key), lowest.value(key), band[m.key], band[lowest.key])]
    chosen = min(group, key=lambda m: (-m.accuracy, m.size_bytes, m.candidate.threads, m.value(key)))
    return chosen, _record(chosen, lowest, group, band, device)


def _record(chosen: TrialMetrics, lowest: TrialMetrics, group: list[TrialMetrics], band: dict, device: str) -> dict:
    """What results.json keeps of the choice, with the line the map prints."""
    b = band[lowest.key]
    widest = max((band[m.key] or 0.0) for m in group)
    if b is None:
        line = (f"chosen on the lowest estimate: {lowest.key}'s estimate is the per-layer roofline's, whose error is not "
                "known here (no kernel records for its runtime on this unit), so no candidate counts as tied with it")
    elif len(group) == 1:
        line = (f"no other candidate's estimate is within the estimate's ±{100 * b:.1f} % of {lowest.key}'s: "
                "chosen on the estimate")
    else:
        why = ("the most accurate, then the smallest, then fewest threads" if chosen.key != lowest.key
               else "it is also the most accurate, smallest, fewest-thread one")
        line = (f"{len(group)} candidates tied within the estimate's ±{100 * widest:.1f} % ({', '.join(m.key for m in group)}): "
                f"{chosen.key} chosen as {why}; the lowest estimate was {lowest.key}")
    scaled = any("scaled from the host" in str((m.estimate.get("latency_s") or {}).get("how", "")) for m in group)
    if scaled and b is not None:
        line += f" (the band is the host predictor's own error; scaling to {device} adds error not measured here)"
    return {"rule": RULE, "lowest_estimate": lowest.key, "tied": [m.key for m in group], "chosen": chosen.key,
            "bands_pct": {m.key: None if band[m.key] is None else round(100 * band[m.key], 2) for m in group},
            "line": line}
