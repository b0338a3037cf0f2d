"""Pareto fronts over measured candidates (any number of objectives, each minimised or maximised).

An objective may carry a relative tolerance per point (`bands`): two values within the larger of their points'
bands are equal on it, so an estimate better only within its own error dominates nothing (search/estimate_ties.py).
"""

from __future__ import annotations

from typing import Mapping, Sequence

Direction = str  # "min" or "max"


def _compare(x: float, y: float, band: float) -> int:
    """-1 when x < y beyond the relative band, 1 when x > y beyond it, 0 within it (or equal)."""
    lo, hi = min(abs(x), abs(y)), max(abs(x), abs(y))
    if x == y or (band > 0 and hi <= lo * (1.0 + band) and (x >= 0) == (y >= 0)):
        return 0
    return -1 if x < y else 1


def dominates(a: Mapping[str, float], b: Mapping[str, float], objectives: Mapping[str, Direction],
              band: Mapping[str, float] | None = None) -> bool:
    """True when `a` is no worse than `b` on every objective and strictly better on one (beyond `band`, a relative
    tolerance per objective for this pair)."""
    better = False
    for key, direction in objectives.items():
        x, y = (a[key], b[key]) if direction == "min" else (-a[key], -b[key])
        c = _compare(x, y, (band or {}).get(key, 0.0))
        if c > 0:
            return False
        better |= c < 0
    return better


def pareto_front(points: Sequence[Mapping[str, float]], objectives: Mapping[str, Direction],
                 bands: Mapping[str, Sequence[float]] | None = None) -> list[int]:
    """Indices of the non-dominated points, in input order (O(n^2): fronts here have tens of points). `bands` gives,
    per objective, each point's relative tolerance; a pair compares within the larger of its two."""
    for d in objectives.values():
        if d not in ("min", "max"):
            raise ValueError(f"objective direction must be 'min' or 'max', got {d!r}")
    bands = bands or {}
    for key, values in bands.items():
        if key not in objectives or len(values) != len(points):
            raise ValueError(f"bands for {key!r} must name an objective and give one value per point")

    def pair(i: int, j: int) -> dict[str, float]:
        return {k: max(v[i], v[j]) for k, v in bands.items()}

    return [i for i, p in enumerate(points)
            if not any(dominates(q, p, objectives, pair(j, i)) for j, q in enumerate(points) if j != i)]
