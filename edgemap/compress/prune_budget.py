"""Prune, then fine-tune on a budget of steps and/or minutes: the way both pruning passes fine-tune by default
(prune_channels for edgemap checkpoints, prune_user_model for users' models).

The images that judge the fine-tuning (probe choice, early stop, the weights kept) are the user's validation images
when given (`val_set`: images the model was not trained on), else a seeded share of the training images held out of
fine-tuning (HELD_OUT; the model may have been trained on them, which flatters it: GrayNet scored 46.6 % on its own
training images and 44.47 % on test). Student and unpruned teacher are compared on the SAME images (a paired drop,
edgemap.train.paired): its standard error comes from the images on which they disagree, far below each accuracy's.
When the criterion or schedule is 'auto' (and images could be held out), prune_choice probes the candidates and the
best is kept; the probe's steps and time count against the budget. Then edgemap.train.budget fine-tunes (AdamW
without BatchNorm, SGD with it; a range-tested rate unless given) until the drop's upper bound is within `max_drop`,
or the budget is spent. The returned dict says how much of the budget was used, what was chosen, which images judged
it, the decision with its uncertainty, and why a ratio was given up.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from torch import nn

from edgemap.compress.prune_choice import ITERATIVE_STEPS, PruneFn, choose_pruning, fixed_choice
from edgemap.data.dataset import ImageSet
from edgemap.errors import EdgemapError
from edgemap.train.budget import FinetuneBudget, finetune
from edgemap.train.evaluate import predict_logits

HELD_OUT = 2000  # training images held out to judge fine-tuning (at most a fifth of the training set): 500 gave an SE
                 # of ~2.2 points per accuracy (benchmarks/results/unseen_map.md)
MAX_VAL = 5000  # the user's validation images used at most (a seeded sample): each evaluation runs over all of them
PROBE_SHARE, PROBE_MAX = 0.1, 30  # probe steps per pruning candidate: a tenth of the step budget, at most 30


@dataclass(frozen=True)
class BudgetPlan:
    """How to prune and fine-tune: the budget, the criterion and schedule ('auto': probed), the stopping bound."""

    budget: FinetuneBudget
    importance: str = "auto"
    schedule: str = "auto"
    probe_steps: int | None = None  # None: a tenth of the step budget (3..30; 30 on a minutes-only budget)
    seed: int = 0
    held_out: int = HELD_OUT  # training images held out to judge the fine-tuning when no validation images are given

    def probe_size(self) -> int:
        """Fine-tuning steps per candidate of the criterion/schedule probe."""
        if self.probe_steps is not None:
            return self.probe_steps
        if self.budget.max_steps is None:
            return PROBE_MAX
        return max(ITERATIVE_STEPS, min(PROBE_MAX, round(self.budget.max_steps * PROBE_SHARE)))


def prune_on_budget(prune: PruneFn, original: nn.Module, train_set: ImageSet, norm, teacher: nn.Module | None,  # noqa: ANN001
                    plan: BudgetPlan, default_importance: str = "l2",
                    val_set: ImageSet | None = None) -> tuple[nn.Module, dict]:
    """(pruned and fine-tuned model, FinetuneResult.to_dict() plus 'pruning' (the choice and why), 'probe_steps',
    'target' (the unpruned model's accuracy on the judging images), 'held_out' (their number), 'judged_on' (which
    they are), 'decision' (the paired drop and its verdict) and 'given_up' (why the ratio ends outside max_drop, or
    None)). `prune(importance, schedule, between)` returns a pruned copy of `original`; `val_set`: images the model
    was not trained on to judge with (else some training images are held out)."""
    train, val, judged_on = judging_images(train_set, val_set, plan.seed, plan.held_out)
    reference = predict_logits(original, val, norm).argmax(1) if val is not None else None
    target = 100 * float(np.mean(reference == val.labels)) if val is not None else None
    budget = plan.budget if val is not None else dataclasses.replace(plan.budget, max_drop=None)
    t0, spent = time.perf_counter(), 0
    if val is not None and "auto" in (plan.importance, plan.schedule):
        pruned, choice, spent = choose_pruning(prune, train, val, norm, budget, teacher, plan.importance, plan.schedule,
                                               plan.probe_size())
        budget = rest_of(budget, spent, time.perf_counter() - t0, choice.lr)
    else:
        importance = default_importance if plan.importance == "auto" else plan.importance
        schedule = "oneshot" if plan.schedule == "auto" else plan.schedule
        between = _between(train, norm, budget, teacher, plan.probe_size(), val)
        pruned = prune(importance, schedule, between)
        given = plan.importance != "auto" and plan.schedule != "auto"
        choice = fixed_choice(importance, schedule, "as given" if given else "no held-out images to choose on")
    run = finetune(pruned, train, norm, budget, val_set=val, teacher=teacher, reference=reference)
    # against the whole budget: the probe's steps and time count too
    run = dataclasses.replace(run, steps=run.steps + spent, seconds=round(time.perf_counter() - t0, 2),
                              budget={"max_steps": plan.budget.max_steps, "max_minutes": plan.budget.max_minutes})
    result = run.to_dict()
    result.update(pruning=choice.to_dict(), probe_steps=spent, target=None if target is None else round(target, 2),
                  held_out=0 if val is None else len(val), judged_on=judged_on)
    result["given_up"] = given_up(result, plan.budget.max_drop)
    return pruned, result


def _between(train: ImageSet, norm, budget: FinetuneBudget, teacher: nn.Module | None, steps: int,  # noqa: ANN001
             val: ImageSet | None) -> Callable[[nn.Module, int], None]:
    """Fine-tuning between the steps of an iterative schedule: `steps` each, no early stop."""
    def tune(m: nn.Module, _step: int) -> None:
        b = dataclasses.replace(budget, max_steps=steps, max_minutes=None, max_drop=None, eval_every=steps)
        finetune(m, train, norm, b, val_set=val, teacher=teacher)

    return tune


def rest_of(budget: FinetuneBudget, steps: int, seconds: float, lr: float | None) -> FinetuneBudget:
    """The budget left after the probe (at least one step / six seconds), at the probe's learning rate; the probe's
    winner fine-tunes at least one evaluation interval before it may stop within the bound (a 30-step probe is not
    fine-tuning). On GrayNet at 0.25 it stopped right after the probe, 0.4 points below its teacher on held-out training
    images yet 1.23 points on the test set; with this rule the 50 more steps scored no better on the held-out images,
    so the same weights were kept: 500 held-out training images are too few and too flattering to judge 0.5 points
    (benchmarks/results/unseen_map.md)."""
    left = None if budget.max_steps is None else max(1, budget.max_steps - steps)
    return dataclasses.replace(
        budget, max_steps=left, min_steps=min(budget.eval_every, left or budget.eval_every),
        max_minutes=None if budget.max_minutes is None else max(0.1, budget.max_minutes - seconds / 60),
        lr=budget.lr if budget.lr is not None else lr)


def judging_images(train_set: ImageSet, val_set: ImageSet | None, seed: int,
                   held_out: int = HELD_OUT) -> tuple[ImageSet, ImageSet | None, str]:
    """(fine-tuning images, judging images or None, what the judging images are): the user's validation images
    (at most MAX_VAL, a seeded sample) with all training images, else hold_out's share of the training images."""
    if val_set is not None:
        if len(val_set) > MAX_VAL:
            pick = np.sort(np.random.default_rng(seed).choice(len(val_set), MAX_VAL, replace=False))
            val_set = val_set.subset(pick)
        return train_set, val_set, f"{len(val_set):,} validation images of {val_set.source} (given to judge the fine-tuning)"
    train, val = hold_out(train_set, seed, held_out)
    if val is None:
        return train, None, "none (held_out 0, or too few training images to hold any out): no early stop"
    return train, val, (f"{len(val):,} training images held out of fine-tuning (the model may have been trained on "
                        "them, which flatters it: --val-data gives images it was not trained on)")


def hold_out(train_set: ImageSet, seed: int, size: int = HELD_OUT) -> tuple[ImageSet, ImageSet | None]:
    """A seeded share of the training images (`size`, at most a fifth) kept out of fine-tuning to judge it;
    fewer than 50 images: none (no early stopping)."""
    n = min(size, len(train_set) // 5)
    if n < 10:
        return train_set, None
    held = np.zeros(len(train_set), dtype=bool)
    held[np.random.default_rng(seed).choice(len(train_set), n, replace=False)] = True
    return train_set.subset(~held), train_set.subset(held)


def given_up(result: dict, max_drop: float | None) -> str | None:
    """Why the ratio ends outside the bound ('... drop 3.10 ± 0.40 points ... (lower bound 2.44 > 0.5)'), or None.
    With a paired decision, only a drop whose one-sided 95 % lower bound exceeds max_drop gives the ratio up."""
    if max_drop is None or result.get("target") is None or result["best_accuracy"] is None:
        return None
    decision = result.get("decision")
    if decision and "verdict" in decision:
        if decision["verdict"] != "outside":
            return None
        return (f"{result['stopped']}: at step {result['best_step']}, {decision['text']}; lower bound "
                f"{decision['lower']:.2f} > the fine-tuning bound {max_drop:g}")
    gap = result["target"] - result["best_accuracy"]
    if gap <= max_drop:
        return None
    return (f"{result['stopped']}: best {result['best_accuracy']:.1f} % at step {result['best_step']} on "
            f"{result['held_out']} held-out images, {gap:.1f} points below the unpruned model's {result['target']:.1f} % "
            f"(fine-tuning bound {max_drop:g})")


def finetune_notes(result: dict) -> list[str]:
    """The report lines of prune_on_budget's result: budget used, the criterion and schedule kept, given up or not;
    then what judged the stop (decision_line), when anything did."""
    used = (f"fine-tuning used {result['budget_used']} ({result['optimizer']}, lr {result['lr']:.2g}); "
            f"pruning: {result['pruning']['reason']}" + (f"; given up: {result['given_up']}" if result.get("given_up") else ""))
    return [used] + ([line] if (line := decision_line(result)) else [])


def decision_line(result: dict) -> str | None:
    """'judged on 2,000 validation images of ...: drop 0.40 ± 0.31 points (...): undecided (within noise of the 0.5
    bound)' - the line the map and compress print per ratio (None when nothing judged)."""
    decision = result.get("decision")
    if not decision:
        return None
    verdict = {"within": "within the {b:g}-point bound", "outside": "outside the {b:g}-point bound",
               "undecided": "undecided: within noise of the {b:g}-point bound"}
    tail = (f": {verdict[decision['verdict']].format(b=decision['max_drop'])} (one-sided 95 %: "
            f"{decision['lower']:.2f} to {decision['upper']:.2f})") if "verdict" in decision else ""
    return f"judged on {result.get('judged_on')}: at step {result['best_step']}, {decision['text']}{tail}"


def check_plan(owner: str, importance: str, schedule: str, probe_steps: int | None, held_out: int = HELD_OUT) -> None:
    """One-line errors for a pass's criterion, schedule and probe size."""
    from edgemap.compress.prune_choice import check_choice

    try:
        check_choice(importance, schedule)
    except EdgemapError as exc:
        raise EdgemapError(f"{owner}: {exc}") from None
    if probe_steps is not None and probe_steps < ITERATIVE_STEPS:
        raise EdgemapError(f"{owner}: probe_steps must be >= {ITERATIVE_STEPS}, got {probe_steps}")
    if held_out < 0:
        raise EdgemapError(f"{owner}: held_out must be >= 0 (0: no early stop without validation images), got {held_out}")
