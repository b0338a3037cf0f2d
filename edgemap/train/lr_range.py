"""A short learning-rate range test (Smith, 2017; fastai's lr_find): pick a learning rate on the first steps.

The rate grows geometrically from `lo` to `hi` over `steps` mini-batches while the smoothed loss is
recorded; the test stops once the loss has blown up (4x its minimum). The suggestion is the rate at
the smoothed-loss minimum divided by 10 - the usual rule, since the minimum itself is already at the
edge of divergence. The model's weights and buffers (BatchNorm statistics) are restored afterwards,
so the test costs time but changes nothing.

The first few rates are not candidates: a freshly pruned model's loss is noisy, and a minimum on the first batch
suggested lo / 10 = 1e-7 for DwHsNet at ratio 0.5, which then never trained (300 steps at chance,
benchmarks/results/unseen_map_val.md). When the smoothed loss never falls below its first value, the test says
nothing about the rate: `fallback` is suggested instead, and the result says so.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

from edgemap.errors import EdgemapError

Batches = Iterator[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class RangeTest:
    """Rates tried, their smoothed losses, and the suggested rate."""

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    suggested: float
    steps: int
    note: str | None = None  # why the suggestion is the fallback, when it is

    def to_dict(self) -> dict:
        """JSON-ready form (rates and losses rounded)."""
        return {"suggested_lr": float(f"{self.suggested:.3g}"), "steps": self.steps, "note": self.note,
                "lrs": [float(f"{v:.3g}") for v in self.lrs], "losses": [round(v, 4) for v in self.losses]}


def lr_range_test(model: nn.Module, make_optimizer: Callable[[list, float], torch.optim.Optimizer], batches: Batches,
                  loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor], steps: int = 40,
                  lo: float = 1e-6, hi: float = 1.0, smoothing: float = 0.7, fallback: float | None = None) -> RangeTest:
    """Run the test on `steps` batches from `batches`; returns the suggestion, the model left as it was.
    `fallback`: the rate suggested when the loss never fell (None: the rate at the minimum / 10 all the same)."""
    if steps < 5 or not 0 < lo < hi:
        raise EdgemapError(f"lr range test needs steps >= 5 and 0 < lo < hi (got steps={steps}, lo={lo}, hi={hi})")
    saved = copy.deepcopy(model.state_dict())
    opt = make_optimizer(list(model.parameters()), lo)
    factor = (hi / lo) ** (1 / (steps - 1))
    lrs, losses, avg, best = [], [], None, math.inf
    model.train()
    try:
        for i in range(steps):
            lr = lo * factor ** i
            for g in opt.param_groups:
                g["lr"] = lr
            x, y = next(batches)
            loss = loss_fn(model(x), y, x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                break
            avg = value if avg is None else smoothing * avg + (1 - smoothing) * value
            lrs.append(lr)
            losses.append(avg)
            best = min(best, avg)
            if avg > 4 * best and i > 4:
                break
    finally:
        model.load_state_dict(saved)
    if len(losses) < 3:
        raise EdgemapError("lr range test: the loss diverged at once; the model or data may be broken")
    skip = min(len(losses) - 1, max(2, len(losses) // 10))  # the first rates are too noisy to be the minimum
    i_min = skip + losses[skip:].index(min(losses[skip:]))
    if fallback is not None and losses[i_min] >= losses[0]:
        return RangeTest(tuple(lrs), tuple(losses), fallback, len(lrs),
                         f"the loss never fell below its first value ({losses[0]:.3g}) over rates {lo:g}-{lrs[-1]:.3g}: "
                         f"the default rate {fallback:g} is used")
    return RangeTest(tuple(lrs), tuple(losses), lrs[i_min] / 10, len(lrs))
