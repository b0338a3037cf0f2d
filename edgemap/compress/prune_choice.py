"""Choose the pruning criterion and schedule for the model at hand, on a short probe, by held-out accuracy.

Which channels to drop and how fast differs by model: magnitude (L2) suits a net trained with weight decay and
BatchNorm, a first-order Taylor score (loss change when a channel goes) one whose weights do not say how much a
channel matters; iterative pruning (a few steps with fine-tuning between) loses less than one-shot on some nets and
costs nothing extra at an equal number of fine-tuning steps. So each candidate - L2 one-shot, Taylor one-shot, then
the better criterion in ITERATIVE_STEPS steps - is pruned and fine-tuned for the same `probe_steps` (distilling from
the unpruned model, one learning rate for all, from a range test on the first), scored on images held out of the
fine-tuning, and the best is kept: the main fine-tuning continues from it, so the probe's steps are not lost.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from edgemap.data.dataset import ImageSet
from edgemap.data.transforms import to_nchw_float
from edgemap.errors import EdgemapError
from edgemap.train.budget import FinetuneBudget, finetune

CRITERIA = ("l2", "taylor")
SCHEDULES = ("oneshot", "iterative")
ITERATIVE_STEPS = 3
PROBE_STEPS = 30  # fine-tuning steps per candidate: a few % of the default 300-step budget each
TAYLOR_IMAGES = 128  # labelled images whose loss gradient scores the channels


@dataclass(frozen=True)
class PruneChoice:
    """The criterion and schedule kept, each candidate's held-out accuracy after the probe, and why."""

    importance: str
    schedule: str
    scores: dict[str, float]
    probe_steps: int
    held_out: int
    lr: float | None
    reason: str

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return dataclasses.asdict(self)


def candidate_name(importance: str, schedule: str) -> str:
    """'taylor one-shot', 'l2 in 3 steps'."""
    return f"{importance} " + ("one-shot" if schedule == "oneshot" else f"in {ITERATIVE_STEPS} steps")


PruneFn = Callable[[str, str, Optional[Callable[[nn.Module, int], None]]], nn.Module]
"""(importance, schedule, between) -> a pruned copy of the model; `between(model, step)` runs between the steps of
an iterative schedule (fine-tuning)."""


def steps_of(schedule: str) -> int:
    """Pruning steps of a schedule: 1 one-shot, ITERATIVE_STEPS iterative."""
    return 1 if schedule == "oneshot" else ITERATIVE_STEPS


def taylor_batch(importance: str, train: ImageSet | None, norm) -> tuple[torch.Tensor, torch.Tensor] | None:  # noqa: ANN001
    """The labelled batch whose loss gradient scores channels for Taylor importance (None for magnitude criteria)."""
    if importance != "taylor":
        return None
    if train is None:
        raise EdgemapError("taylor importance needs training data")
    n = min(TAYLOR_IMAGES, len(train))
    return torch.from_numpy(to_nchw_float(train.images[:n], norm)), torch.from_numpy(train.labels[:n])


def choose_pruning(prune: PruneFn, train: ImageSet, val: ImageSet, norm, budget: FinetuneBudget,  # noqa: ANN001
                   teacher: nn.Module | None, importance: str = "auto", schedule: str = "auto",
                   probe_steps: int = PROBE_STEPS) -> tuple[nn.Module, PruneChoice, int]:
    """(the best candidate, pruned and probe-fine-tuned; the choice; fine-tuning steps the probes spent).

    What is 'auto' is chosen: both - L2 and Taylor one-shot, then the better of them in steps too; one - its options
    with the other as given. Ties keep the candidate tried first (the simpler)."""
    check_choice(importance, schedule)
    if probe_steps < ITERATIVE_STEPS:
        raise EdgemapError(f"pruning probe: probe_steps must be >= {ITERATIVE_STEPS}, got {probe_steps}")
    probe = _Probe(prune, train, val, norm, teacher, dataclasses.replace(budget, max_minutes=None, max_drop=None),
                   probe_steps)
    criteria = CRITERIA if importance == "auto" else (importance,)
    for criterion in criteria:
        probe.run(criterion, "oneshot" if schedule == "auto" else schedule)
    if schedule == "auto":
        probe.run(max(criteria, key=lambda c: probe.results[(c, "oneshot")][0]), "iterative")
    key = max(probe.results, key=lambda k: probe.results[k][0])  # dict order: ties keep the one tried first
    scores = {candidate_name(*k): round(v[0], 2) for k, v in probe.results.items()}
    others = ", ".join(f"{n} {s:.2f} %" for n, s in scores.items() if n != candidate_name(*key))
    reason = (f"{candidate_name(*key)} kept: {scores[candidate_name(*key)]:.2f} % on {len(val)} held-out images after "
              f"{probe_steps} probe steps ({others})" + (f"; learning rate: {probe.lr_note}" if probe.lr_note else ""))
    return probe.results[key][1], PruneChoice(key[0], key[1], scores, probe_steps, len(val), probe.lr, reason), probe.spent


class _Probe:
    """Prunes and fine-tunes one candidate at a time, all with the same steps and learning rate."""

    def __init__(self, prune: PruneFn, train: ImageSet, val: ImageSet, norm, teacher: nn.Module | None,  # noqa: ANN001
                 budget: FinetuneBudget, steps: int) -> None:
        self.prune, self.train, self.val, self.norm, self.teacher = prune, train, val, norm, teacher
        self.budget, self.steps = budget, steps
        self.lr, self.spent, self.lr_note = budget.lr, 0, None
        self.results: dict[tuple[str, str], tuple[float, nn.Module]] = {}

    def tune(self, m: nn.Module, steps: int) -> float | None:
        """Fine-tune `m` for `steps` (the first call's range test sets the rate for all); its held-out accuracy."""
        budget = dataclasses.replace(self.budget, max_steps=steps, eval_every=steps, lr=self.lr)
        r = finetune(m, self.train, self.norm, budget, val_set=self.val, target=None, teacher=self.teacher)
        self.lr, self.spent = r.lr, self.spent + r.steps
        if r.range_test and r.range_test.get("note"):  # the range test said nothing: a default rate
            self.lr_note = r.range_test["note"]
        return r.best_accuracy

    def run(self, importance: str, schedule: str) -> None:
        share = self.steps // ITERATIVE_STEPS if schedule == "iterative" else self.steps
        pruned = self.prune(importance, schedule, lambda m, _s: self.tune(m, share))
        acc = self.tune(pruned, self.steps - share * (ITERATIVE_STEPS - 1) if schedule == "iterative" else self.steps)
        self.results[(importance, schedule)] = (float("-inf") if acc is None else acc, pruned)


def fixed_choice(importance: str, schedule: str, why: str) -> PruneChoice:
    """The record of a criterion and schedule that were given or defaulted, not chosen on a probe."""
    return PruneChoice(importance, schedule, {}, 0, 0, None, f"{candidate_name(importance, schedule)}: {why}")


def check_choice(importance: str, schedule: str) -> None:
    """One-line errors for unknown names ('auto' is allowed for both)."""
    if importance not in ("auto", "l1", *CRITERIA):
        raise EdgemapError(f"pruning importance must be auto, l1, {' or '.join(CRITERIA)}, got {importance!r}")
    if schedule not in ("auto", *SCHEDULES):
        raise EdgemapError(f"pruning schedule must be auto, {' or '.join(SCHEDULES)}, got {schedule!r}")
