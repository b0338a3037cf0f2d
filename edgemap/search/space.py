"""The space of mappings: pruning ratio x precision (and calibration) x backend x threads.

Impossible combinations are removed before anything runs (the device lacks the runtime or
data type; the backend cannot take that precision; pruning without a torch model or training
data), as Olive does with each pass's declared needs.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field

from edgemap.errors import EdgemapError

PRECISIONS = ("fp32", "fp16", "int8")
CALIBRATIONS = ("minmax", "entropy", "percentile")
BACKENDS = ("onnxruntime", "openvino", "litert")


@dataclass(frozen=True)
class Candidate:
    """One mapping to try. `calibration` is only meaningful for int8 (else "none")."""

    prune_ratio: float = 0.0
    precision: str = "fp32"
    calibration: str = "none"
    backend: str = "onnxruntime"
    threads: int = 1

    def key(self) -> str:
        """A stable, readable identity (cache key and label)."""
        cal = f"-{self.calibration}" if self.precision == "int8" else ""
        return f"p{self.prune_ratio:g}-{self.precision}{cal}-{self.backend}-t{self.threads}"

    def artifact_key(self) -> str:
        """What determines the model file (threads do not)."""
        return self.key().rsplit("-t", 1)[0]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SearchSpace:
    """The choices for each axis; `feasible` removes what cannot run."""

    prune_ratios: tuple[float, ...] = (0.0, 0.25, 0.5)
    precisions: tuple[str, ...] = PRECISIONS
    calibrations: tuple[str, ...] = CALIBRATIONS
    backends: tuple[str, ...] = ("onnxruntime", "openvino")
    threads: tuple[int, ...] = (1, 2)
    can_prune: bool = True  # False when the model has no torch form or there is no training data
    litert_source: bool = True  # False when the model has no PyTorch form (LiteRT converts from PyTorch)
    device_runtimes: tuple[str, ...] = BACKENDS
    device_dtypes: tuple[str, ...] = PRECISIONS
    installed_backends: tuple[str, ...] = BACKENDS
    reasons: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        for name, values, allowed in (("precision", self.precisions, PRECISIONS), ("calibration", self.calibrations, CALIBRATIONS),
                                      ("backend", self.backends, BACKENDS)):
            bad = [v for v in values if v not in allowed]
            if bad or not values:
                raise EdgemapError(f"search space: unknown {name} {bad or '(none given)'}; choose from {', '.join(allowed)}")
        if any(not 0 <= r < 1 for r in self.prune_ratios) or not self.prune_ratios:
            raise EdgemapError("search space: pruning ratios must lie in [0, 1)")
        if any(t < 1 for t in self.threads) or not self.threads:
            raise EdgemapError("search space: thread counts must be at least 1")

    def why_infeasible(self, c: Candidate) -> str | None:
        """None when `c` can run; otherwise the reason it is skipped."""
        if c.backend not in self.installed_backends:
            return f"backend {c.backend} is not installed"
        if c.backend not in self.device_runtimes:
            return f"the device does not run {c.backend}"
        if c.precision not in self.device_dtypes:
            return f"the device has no {c.precision} support"
        if c.prune_ratio > 0 and not self.can_prune:
            return "pruning needs a torch model and training data"
        if c.backend == "litert" and not self.litert_source:
            return "LiteRT conversion starts from PyTorch; this model has no PyTorch form"
        if c.backend == "litert" and c.precision == "int8" and c.calibration != "minmax":
            return "LiteRT int8 uses its own min/max calibration"  # the other methods would duplicate it
        return None

    def grid(self) -> list[Candidate]:
        """Every feasible candidate (the exhaustive baseline the search is compared with)."""
        out = []
        for r, p, b, t in itertools.product(self.prune_ratios, self.precisions, self.backends, self.threads):
            for cal in (self.calibrations if p == "int8" else ("none",)):
                c = Candidate(r, p, cal, b, t)
                if self.why_infeasible(c) is None:
                    out.append(c)
        return out

    def skipped(self) -> dict[str, str]:
        """Candidates removed before running, with the reason (shown to the user)."""
        out = {}
        for r, p, b, t in itertools.product(self.prune_ratios, self.precisions, self.backends, self.threads):
            for cal in (self.calibrations if p == "int8" else ("none",)):
                c = Candidate(r, p, cal, b, t)
                reason = self.why_infeasible(c)
                if reason:
                    out[c.key()] = reason
        return out
