"""Pareto fronts over measured candidates (any number of objectives, each minimised or maximised)."""

from __future__ import annotations

from typing import Mapping, Sequence

Direction = str  # "min" or "max"


def dominates(a: Mapping[str, float], b: Mapping[str, float], objectives: Mapping[str, Direction]) -> bool:
    """True when `a` is no worse than `b` on every objective and strictly better on one."""
    better = False
    for key, direction in objectives.items():
        x, y = (a[key], b[key]) if direction == "min" else (-a[key], -b[key])
        if x > y:
            return False
        better |= x < y
    return better


def pareto_front(points: Sequence[Mapping[str, float]], objectives: Mapping[str, Direction]) -> list[int]:
    """Indices of the non-dominated points, in input order (O(n^2): fronts here have tens of points)."""
    for d in objectives.values():
        if d not in ("min", "max"):
            raise ValueError(f"objective direction must be 'min' or 'max', got {d!r}")
    return [i for i, p in enumerate(points)
            if not any(dominates(q, p, objectives) for j, q in enumerate(points) if j != i)]
