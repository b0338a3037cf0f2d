"""Fine-tuning on a budget of optimizer steps or minutes, with settings chosen for the model at hand.

Epochs are the wrong unit for fine-tuning a compressed model: 6,000 images x 6 epochs is 140 steps at
batch 256, too few to recover anything, while 50,000 images x 3 epochs is 14 minutes here. So:
  - the budget is `max_steps` and/or `max_minutes` (whichever runs out first);
  - the optimizer suits the model: AdamW for a model without BatchNorm (plain SGD on such a model,
    the issue's 0.5-pruned CNN, stalled at 51 % training accuracy), SGD + Nesterov for one with it;
  - the learning rate comes from a short range test on the first steps unless given; then warm-up
    and cosine decay over the step budget;
  - the student is evaluated every `eval_every` steps and training stops as soon as it is within
    `max_drop` points of `target` (its teacher's accuracy); the best evaluated weights are kept. Given the
    teacher's predictions on the same held-out images (`reference`), the test is paired (edgemap.train.paired):
    it stops only once the drop's one-sided 95 % upper bound is within `max_drop`, so a drop measured within
    noise of the bound does not stop it at step 0;
  - with a teacher, the loss blends cross-entropy and distillation (KL at temperature T).
`FinetuneResult` says how much of the budget was used and why it stopped, for the map's output.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgemap.data.dataset import ImageSet
from edgemap.data.transforms import to_nchw_float
from edgemap.errors import EdgemapError
from edgemap.train.augment import random_crop_flip
from edgemap.train.lr_range import lr_range_test

OPTIMIZERS = ("auto", "adamw", "sgd")
DEFAULT_LR = {"adamw": 1e-3, "sgd": 0.01}  # when the range test says nothing (its loss never fell)


@dataclass(frozen=True)
class FinetuneBudget:
    """How much fine-tuning, and how (None / "auto" = chosen for the model)."""

    max_steps: int | None = 300
    max_minutes: float | None = None
    batch_size: int = 64
    optimizer: str = "auto"
    lr: float | None = None  # None: learning-rate range test
    range_test_steps: int = 30
    weight_decay: float | None = None  # None: 0.01 for AdamW, 5e-4 for SGD
    warmup: float = 0.05  # share of the step budget spent rising to the rate
    eval_every: int = 50
    max_drop: float | None = None  # stop once accuracy >= target - max_drop
    min_steps: int = 0  # no stopping within the bound before this step (a probe's winner still fine-tunes a while)
    distill_alpha: float = 0.5  # weight of the distillation term when a teacher is given
    temperature: float = 4.0
    label_smoothing: float = 0.0
    augment: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_steps is None and self.max_minutes is None:
            raise EdgemapError("fine-tuning budget: give max_steps, max_minutes or both")
        if (self.max_steps is not None and self.max_steps < 1) or (self.max_minutes is not None and self.max_minutes <= 0):
            raise EdgemapError("fine-tuning budget: max_steps must be >= 1 and max_minutes > 0")
        if self.optimizer not in OPTIMIZERS:
            raise EdgemapError(f"fine-tuning optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.batch_size < 1 or self.eval_every < 1 or self.min_steps < 0 or not 0 <= self.warmup < 1 \
                or not 0 <= self.distill_alpha <= 1:
            raise EdgemapError("fine-tuning budget: batch_size, eval_every >= 1; min_steps >= 0; warmup in [0, 1); "
                               "distill_alpha in [0, 1]")
        if self.lr is not None and self.lr <= 0:
            raise EdgemapError(f"fine-tuning lr must be > 0, got {self.lr}")


@dataclass
class FinetuneResult:
    """What the fine-tuning did: steps and time used against the budget, why it stopped, the accuracy curve."""

    steps: int
    seconds: float
    stopped: str
    optimizer: str
    lr: float
    best_accuracy: float | None
    best_step: int
    budget: dict
    history: list[dict] = field(default_factory=list)
    range_test: dict | None = None
    decision: dict | None = None  # paired comparison with the teacher at the best step, and its verdict

    def budget_used(self) -> str:
        """'120 of 300 steps (40 %), 0.8 of 5 min' — the line the map prints per candidate."""
        parts = []
        if self.budget.get("max_steps"):
            parts.append(f"{self.steps} of {self.budget['max_steps']} steps ({100 * self.steps / self.budget['max_steps']:.0f} %)")
        else:
            parts.append(f"{self.steps} steps")
        minutes = self.seconds / 60
        parts.append(f"{minutes:.1f} of {self.budget['max_minutes']:g} min" if self.budget.get("max_minutes")
                     else f"{minutes:.1f} min")
        return ", ".join(parts) + f": {self.stopped}"

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {**asdict(self), "budget_used": self.budget_used()}


def has_batchnorm(model: nn.Module) -> bool:
    """True when any BatchNorm layer is present."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def choose_optimizer(model: nn.Module, budget: FinetuneBudget) -> str:
    """'adamw' for a model without BatchNorm, 'sgd' for one with it, unless the budget names one."""
    if budget.optimizer != "auto":
        return budget.optimizer
    return "sgd" if has_batchnorm(model) else "adamw"


def make_optimizer(kind: str, weight_decay: float | None) -> Callable[[list, float], torch.optim.Optimizer]:
    """A factory (params, lr) -> optimizer of the chosen kind."""
    if kind == "adamw":
        wd = 0.01 if weight_decay is None else weight_decay
        return lambda params, lr: torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    wd = 5e-4 if weight_decay is None else weight_decay
    return lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd)


def batches(data: ImageSet, norm, budget: FinetuneBudget) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:  # noqa: ANN001
    """Endless shuffled mini-batches (augmented when asked), reshuffled at each pass over the data."""
    rng = np.random.default_rng(budget.seed)
    gen = torch.Generator().manual_seed(budget.seed)
    while True:
        order = rng.permutation(len(data))
        for start in range(0, len(order) - min(budget.batch_size, len(order)) + 1, budget.batch_size):
            idx = np.sort(order[start:start + budget.batch_size])
            x = torch.from_numpy(to_nchw_float(data.images[idx], norm))
            if budget.augment and x.shape[-1] > 8:
                x = random_crop_flip(x, 4 if x.shape[-1] >= 24 else 2, gen)
            yield x, torch.from_numpy(data.labels[idx])


def make_loss(budget: FinetuneBudget, teacher: nn.Module | None):  # noqa: ANN201 - loss(logits, y, x)
    """Cross-entropy, blended with distillation from `teacher` when one is given."""
    def ce(logits: torch.Tensor, y: torch.Tensor, _x: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, label_smoothing=budget.label_smoothing)

    if teacher is None:
        return ce
    teacher.eval()
    t, a = budget.temperature, budget.distill_alpha

    def kd(logits: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            soft = F.softmax(teacher(x) / t, dim=1)
        distill = F.kl_div(F.log_softmax(logits / t, dim=1), soft, reduction="batchmean") * t * t
        return (1 - a) * ce(logits, y, x) + a * distill

    return kd


def lr_at(step: int, total: int, peak: float, warmup: float) -> float:
    """Linear warm-up to `peak`, then cosine decay to zero at `total`."""
    w = int(total * warmup)
    if step < w:
        return peak * (step + 1) / w
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - w) / max(1, total - w))))


def finetune(model: nn.Module, train_set: ImageSet, norm, budget: FinetuneBudget,  # noqa: ANN001 - Normalization/spec
             val_set: ImageSet | None = None, target: float | None = None, teacher: nn.Module | None = None,
             log: Callable[[str], None] | None = None, reference: np.ndarray | None = None) -> FinetuneResult:
    """Fine-tune `model` in place within `budget`; it ends holding the best evaluated weights.

    `target` is the accuracy (percent on `val_set`) to come within `budget.max_drop` of, usually the teacher's.
    `reference`: the teacher's predicted classes on `val_set`; the stop is then decided on the paired drop (and
    `target` is the teacher's accuracy there).
    """
    if reference is not None:
        if val_set is None or len(reference) != len(val_set):
            raise EdgemapError("fine-tuning: the reference predictions must be the teacher's on the validation set")
        target = 100 * float(np.mean(reference == val_set.labels))
    if budget.max_drop is not None and (val_set is None or target is None):
        raise EdgemapError("fine-tuning: stopping within max_drop needs a validation set and a target accuracy")
    torch.manual_seed(budget.seed)
    kind = choose_optimizer(model, budget)
    factory, loss_fn = make_optimizer(kind, budget.weight_decay), make_loss(budget, teacher)
    stream = batches(train_set, norm, budget)
    t0 = time.perf_counter()
    range_test = None if budget.lr is not None else lr_range_test(model, factory, stream, loss_fn, budget.range_test_steps,
                                                                  fallback=DEFAULT_LR[kind])
    lr = budget.lr if range_test is None else range_test.suggested
    run = _Run(model, budget, val_set, norm, target, log or (lambda _s: None), t0, reference)
    stopped = run.evaluate(0)  # a student already within the bound needs no steps
    opt = factory(list(model.parameters()), lr)
    step = 0
    while stopped is None:
        total = run.schedule_length(step)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total, lr, budget.warmup)
        model.train()
        x, y = next(stream)
        loss = loss_fn(model(x), y, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        run.step_done(float(loss.detach()))
        stopped = run.after_step(step)
    run.restore_best()
    return FinetuneResult(step, round(time.perf_counter() - t0, 2), stopped, kind, lr, run.best_acc, run.best_step,
                          {"max_steps": budget.max_steps, "max_minutes": budget.max_minutes}, run.history,
                          None if range_test is None else range_test.to_dict(), run.decision())


class _Run:
    """Book-keeping of one fine-tuning run: time, evaluations, the best weights, the reason to stop."""

    def __init__(self, model: nn.Module, budget: FinetuneBudget, val_set: ImageSet | None, norm,  # noqa: ANN001
                 target: float | None, log: Callable[[str], None], t0: float, reference: np.ndarray | None = None) -> None:
        self.model, self.budget, self.val_set, self.norm, self.target, self.log = model, budget, val_set, norm, target, log
        self.reference, self.best_paired = reference, None
        self.t0, self.deadline = t0, t0 + budget.max_minutes * 60 if budget.max_minutes else math.inf
        self.train_t0 = None
        self.history: list[dict] = []
        self.best_acc: float | None = None
        self.best_step, self.best_state = 0, None
        self.losses: list[float] = []

    def schedule_length(self, step: int) -> int:
        """Steps the schedule spans: the step budget, shortened to what the time left allows at the pace so far."""
        if self.train_t0 is None:
            self.train_t0 = time.perf_counter()
        total = self.budget.max_steps or 10 ** 9
        if math.isfinite(self.deadline) and step >= 3:
            pace = (time.perf_counter() - self.train_t0) / step
            total = min(total, step + int((self.deadline - time.perf_counter()) / pace) + 1)
        return max(total, step + 1)

    def step_done(self, loss: float) -> None:
        if not math.isfinite(loss):
            raise EdgemapError("fine-tuning diverged (loss is NaN/Inf); give a smaller lr")
        self.losses.append(loss)

    def after_step(self, step: int) -> str | None:
        """The reason to stop after `step`, or None to go on."""
        last = self.budget.max_steps is not None and step >= self.budget.max_steps
        out_of_time = time.perf_counter() >= self.deadline
        if step % self.budget.eval_every == 0 or last or out_of_time:
            within = self.evaluate(step)
            if within:
                return within
        if last:
            return "step budget spent"
        return "time budget spent" if out_of_time else None

    def evaluate(self, step: int) -> str | None:
        """Score the model on the validation set; the reason to stop when it is within the bound."""
        if self.val_set is None:
            return None
        from edgemap.train.evaluate import predict_logits
        from edgemap.train.paired import paired_drop

        pred = predict_logits(self.model, self.val_set, self.norm).argmax(1)
        acc = 100 * float(np.mean(pred == self.val_set.labels))
        paired = None if self.reference is None else paired_drop(self.reference, pred, self.val_set.labels)
        loss = float(np.mean(self.losses[-self.budget.eval_every:])) if self.losses else None
        self.history.append({"step": step, "accuracy": round(acc, 3), "train_loss": None if loss is None else round(loss, 4),
                             "seconds": round(time.perf_counter() - self.t0, 1),
                             **({} if paired is None else {"drop": round(paired.drop, 3), "drop_se": round(paired.se, 3),
                                                           "agreement": round(paired.agreement, 2)})})
        self.log(f"step {step}: accuracy {acc:.2f} %" + (f" (target {self.target:.2f} %)" if self.target is not None else ""))
        if self.best_acc is None or acc > self.best_acc:
            self.best_acc, self.best_step, self.best_paired = acc, step, paired
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        if self.budget.max_drop is None or step < self.budget.min_steps:
            return None
        if paired is not None:
            if paired.verdict(self.budget.max_drop) == "within":
                return (f"within {self.budget.max_drop:g} points of the unpruned model at step {step} (paired "
                        f"{paired.drop:.2f} ± {paired.se:.2f}, upper bound {paired.upper():.2f})")
            return None
        if acc >= self.target - self.budget.max_drop:
            return f"within {self.budget.max_drop:g} points of {self.target:.2f} % at step {step}"
        return None

    def decision(self) -> dict | None:
        """The paired comparison at the best step with its verdict against max_drop (None without a reference)."""
        if self.best_paired is None:
            return None
        out = {**self.best_paired.to_dict(), "text": self.best_paired.text()}
        if self.budget.max_drop is not None:
            out.update(verdict=self.best_paired.verdict(self.budget.max_drop), max_drop=self.budget.max_drop,
                       upper=round(self.best_paired.upper(), 3), lower=round(self.best_paired.lower(), 3))
        return out

    def restore_best(self) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
