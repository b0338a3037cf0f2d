"""The space of mappings: pruning ratio x precision (and calibration) x backend x threads.

Impossible combinations are removed before anything runs, each with its reason, and the reasons
come from declarations, not from rules kept here: what each backend runs (its format, precisions
and calibrations: edgemap.runtime.registry.CAPABILITIES), what the device runs (its profile's
runtimes and data types), what is installed, what the model allows (pruning needs a torch form and
training data), and whether the candidate's passes chain from the model's format (each pass's
declared consumes/produces: edgemap.search.compile).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from edgemap.errors import EdgemapError
from edgemap.runtime.registry import CAPABILITIES
from edgemap.search.candidate import Candidate
from edgemap.search.compile import chain_error

PRECISIONS = ("fp32", "fp16", "int8")
CALIBRATIONS = tuple(dict.fromkeys(c for caps in CAPABILITIES.values() for c in caps.calibrations))
BACKENDS = tuple(b for b in CAPABILITIES if b != "torch")  # torch runs the source itself: the comparison's baseline


@dataclass(frozen=True)
class SearchSpace:
    """The choices for each axis; `why_infeasible` removes what cannot run.

    device_precisions: backend -> precisions it runs on the device (a profile's backend_precisions); when
    empty, device_runtimes x device_dtypes say it. source_format: the model's artifact format, to check that
    each candidate's passes chain (None: not checked)."""

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
    device_precisions: tuple[tuple[str, tuple[str, ...]], ...] = ()
    source_format: str | None = None
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
        caps = CAPABILITIES[c.backend]
        on_device = dict(self.device_precisions)
        if c.backend not in self.installed_backends:
            return f"backend {c.backend} is not installed"
        if c.backend not in (on_device or self.device_runtimes):
            return f"the device does not run {c.backend}"
        if c.precision not in (on_device.get(c.backend) if on_device else self.device_dtypes):
            return f"the device has no {c.precision} support" + (f" in {c.backend}" if on_device else "")
        if c.precision not in caps.precisions:
            return f"{c.backend} runs {', '.join(caps.precisions)}, not {c.precision}"
        if c.precision == "int8" and c.calibration not in caps.calibrations:
            return f"{c.backend} int8 calibrates with {', '.join(caps.calibrations)} only"
        if c.prune_ratio > 0 and not self.can_prune:
            return "pruning needs a torch model and training data"
        if c.backend == "litert" and not self.litert_source:
            return "LiteRT conversion starts from PyTorch; this model has no PyTorch form"
        if self.source_format is not None:
            return chain_error(c, self.source_format)
        return None

    def _all(self) -> list[Candidate]:
        out = []
        for r, p, b, t in itertools.product(self.prune_ratios, self.precisions, self.backends, self.threads):
            out += [Candidate(r, p, cal, b, t) for cal in (self.calibrations if p == "int8" else ("none",))]
        return out

    def grid(self) -> list[Candidate]:
        """Every feasible candidate (the exhaustive baseline the search is compared with)."""
        return [c for c in self._all() if self.why_infeasible(c) is None]

    def skipped(self) -> dict[str, str]:
        """Candidates removed before running, with the reason (shown to the user)."""
        return {c.key(): r for c in self._all() if (r := self.why_infeasible(c))}
