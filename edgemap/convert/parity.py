"""The parity gate: run the original and the converted model on the same inputs and compare.

A conversion is refused (no file written) when the converted model's logits drift further from
the original's than the tolerance allows, or when it picks a different top-1 class too often.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from edgemap.errors import EdgemapError


@dataclass(frozen=True)
class Tolerance:
    """max_abs_diff: largest allowed |logit difference| (None: not checked, e.g. INT8);
    min_agreement: smallest allowed fraction of inputs with the same top-1 class."""

    max_abs_diff: float | None
    min_agreement: float

    def __post_init__(self) -> None:
        if self.max_abs_diff is not None and self.max_abs_diff <= 0:
            raise EdgemapError(f"max_abs_diff must be > 0, got {self.max_abs_diff}")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise EdgemapError(f"min_agreement must lie in [0, 1], got {self.min_agreement}")


# FP32 differs from the original only by kernel rounding; FP16 weights move logits by ~1e-3..1e-2;
# INT8 moves them by whole quantization steps, so only top-1 agreement is judged.
DEFAULT_TOLERANCES = {
    "fp32": Tolerance(max_abs_diff=1e-3, min_agreement=0.999),
    "fp16": Tolerance(max_abs_diff=5e-2, min_agreement=0.99),
    "int8": Tolerance(max_abs_diff=None, min_agreement=0.95),
}


@dataclass(frozen=True)
class ParityReport:
    """How closely the converted model follows the original on `n` inputs."""

    n: int
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float
    reference_top1: float | None = None  # accuracy in percent when labels are known
    candidate_top1: float | None = None
    passed: bool = True
    tolerance: Tolerance | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        acc = ""
        if self.reference_top1 is not None:
            acc = f", accuracy {self.reference_top1:.2f}% -> {self.candidate_top1:.2f}%"
        return (f"max |diff| {self.max_abs_diff:.2e}, top-1 agreement {self.top1_agreement * 100:.2f}% "
                f"on {self.n} inputs{acc}")


def run_batches(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int = 100) -> np.ndarray:
    """Logits of `fn` over `x`, `batch` rows at a time."""
    return np.concatenate([np.asarray(fn(x[i:i + batch]), dtype=np.float32) for i in range(0, len(x), batch)])


def compare(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None = None,
            tolerance: Tolerance | None = None) -> ParityReport:
    """Compare two logit arrays (same inputs, same order) and judge them against `tolerance`."""
    if reference.shape != candidate.shape:
        raise EdgemapError(f"converted model gives outputs of shape {candidate.shape}, the original {reference.shape}")
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    ref_top, cand_top = reference.argmax(1), candidate.argmax(1)
    agreement = float((ref_top == cand_top).mean())
    max_diff = float(diff.max()) if diff.size else 0.0
    passed = tolerance is None or (agreement >= tolerance.min_agreement and np.isfinite(max_diff)
                                   and (tolerance.max_abs_diff is None or max_diff <= tolerance.max_abs_diff))
    ref_acc = cand_acc = None
    if labels is not None:
        ref_acc, cand_acc = float((ref_top == labels).mean() * 100), float((cand_top == labels).mean() * 100)
    return ParityReport(len(reference), max_diff, float(diff.mean()), agreement, ref_acc, cand_acc, bool(passed), tolerance)


def gate(report: ParityReport, what: str) -> None:
    """Raise EdgemapError when the report failed its tolerance; `what` names the conversion."""
    if report.passed:
        return
    tol = report.tolerance
    limits = f"top-1 agreement >= {tol.min_agreement * 100:.2f}%"
    if tol.max_abs_diff is not None:
        limits += f" and max |diff| <= {tol.max_abs_diff:.1e}"
    raise EdgemapError(f"{what}: parity check failed ({report.summary()}; required {limits}); no file written")
