"""A student judged against its teacher on the SAME held-out images: the accuracy drop and its paired uncertainty.

Each accuracy measured on n images has a standard error of sqrt(p(1-p)/n): 2.2 points at n = 500, far too wide to
judge a 0.5-point bound. But the DIFFERENCE of two accuracies on the same images only moves with the images on
which the two disagree about correctness (b: teacher right, student wrong; c: the reverse): drop = (b - c) / n,
with standard error sqrt(b + c - (b - c)^2 / n) / n (the paired, McNemar-style one). A pruned student that keeps
most of its teacher's decisions disagrees on few images, so its drop is measured far more tightly than either
accuracy. Agreement (same predicted class) is reported beside it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

Z_ONE_SIDED = 1.645  # one-sided 95 %: "within the bound" / "outside it" only when the drop's bound says so


@dataclass(frozen=True)
class PairedDrop:
    """Teacher and student top-1 on the same images, the drop (points) and its paired standard error."""

    n: int
    teacher: float
    student: float
    drop: float
    se: float
    agreement: float
    discordant: int

    def upper(self, z: float = Z_ONE_SIDED) -> float:
        """The drop's one-sided upper bound."""
        return self.drop + z * self.se

    def lower(self, z: float = Z_ONE_SIDED) -> float:
        """The drop's one-sided lower bound."""
        return self.drop - z * self.se

    def verdict(self, max_drop: float, z: float = Z_ONE_SIDED) -> str:
        """'within' (upper bound <= max_drop), 'outside' (lower bound > max_drop) or 'undecided' (within noise)."""
        if self.upper(z) <= max_drop:
            return "within"
        return "outside" if self.lower(z) > max_drop else "undecided"

    def text(self) -> str:
        """'drop 0.40 ± 0.31 points (paired SE; 46.60 % -> 46.20 %, agreement 91.2 %, on 1,200 images)'."""
        return (f"drop {self.drop:.2f} ± {self.se:.2f} points (paired SE; {self.teacher:.2f} % -> {self.student:.2f} %, "
                f"agreement {self.agreement:.1f} %, on {self.n:,} images)")

    def to_dict(self) -> dict:
        """JSON-ready form (rounded)."""
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def paired_drop(teacher_pred: np.ndarray, student_pred: np.ndarray, labels: np.ndarray) -> PairedDrop:
    """The paired comparison of two sets of predicted classes on the same labelled images."""
    if not len(labels) == len(teacher_pred) == len(student_pred) or len(labels) == 0:
        raise ValueError("paired_drop needs equally many (and some) predictions and labels")
    t_ok, s_ok = teacher_pred == labels, student_pred == labels
    n = len(labels)
    b, c = int(np.sum(t_ok & ~s_ok)), int(np.sum(~t_ok & s_ok))
    var = max(0.0, b + c - (b - c) ** 2 / n)
    return PairedDrop(n=n, teacher=100 * float(t_ok.mean()), student=100 * float(s_ok.mean()), drop=100 * (b - c) / n,
                      se=100 * math.sqrt(var) / n, agreement=100 * float(np.mean(teacher_pred == student_pred)),
                      discordant=b + c)
