"""Channel pruning of a user's model (ONNX, .pt2, entry point): torch form -> prune -> fine-tune with distillation
from the original -> FP32 ONNX. An edgemap checkpoint is pruned by prune_channels instead (it keeps its sidecar).

Fine-tuning runs on a budget of optimizer steps and/or minutes (edgemap.train.budget): the optimizer suits the
model (AdamW without BatchNorm, SGD with it), the learning rate comes from a short range test, and training stops
once the student is within `max_drop` points of the unpruned model on images held out of the training data. The
report's extra["finetune"] says how much of the budget was used and why it stopped, or why the ratio was given up.
`finetune_epochs` (a recipe written before the budget) keeps the former fixed-epoch fine-tuning.
The pruning criterion (L2 or Taylor) and schedule (one-shot or iterative) are chosen for the model on a short probe
(edgemap.compress.prune_choice) unless given; the probe's steps count against the budget, and the report's
extra["finetune"]["pruning"] says which was kept and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgemap.compress.context import PassContext
from edgemap.compress.report import CompressionReport, file_size, timed
from edgemap.core import passes
from edgemap.errors import EdgemapError

FINETUNE_LR = 0.05  # fixed-epoch fine-tuning learning rate of a pruned model with BatchNorm
FINETUNE_LR_NO_BN = 0.01  # without BatchNorm (folded by ONNX exporters) 0.05 diverges: loss 477 in 7 steps on ByomNet
FINETUNE_STEPS = 300  # default step budget: 6,000 images x 6 epochs is only 140 steps at batch 256 (issue 22)
HELD_OUT = 500  # training images held out to decide early stopping (at most a fifth of the training set)
PROBE_SHARE, PROBE_MAX = 0.1, 30  # probe steps per pruning candidate: a tenth of the step budget, at most 30


@passes.register_pass("prune_user_model", consumes=("onnx", "pt2", "entry_point"), produces="onnx", needs=("train",),
                      deterministic=False)
@dataclass(frozen=True)
class PruneUserModel:
    """Remove `ratio` of the channels of every conv/linear layer (widths rounded to `round_to`; the classifier's
    outputs kept), fine-tune with distillation from the unpruned model within `finetune_steps` steps and/or
    `finetune_minutes` (optimizer "auto": AdamW without BatchNorm, SGD with it; lr None: a range test), stopping once
    within `max_drop` points of the unpruned model on held-out training images; export FP32 ONNX at the model's batch.
    finetune_epochs (not None): the fixed-epoch fine-tuning instead (lr None: 0.05 with BatchNorm, 0.01 without).
    importance ('auto', 'l2', 'taylor') and schedule ('auto', 'oneshot', 'iterative'): 'auto' is chosen on a probe of
    `probe_steps` fine-tuning steps per candidate (None: a tenth of the step budget, 3 to 30), by held-out accuracy (budget fine-tuning only; else L2 one-shot)."""

    ratio: float = 0.5
    round_to: int | None = 8
    finetune_steps: int | None = FINETUNE_STEPS
    finetune_minutes: float | None = None
    optimizer: str = "auto"
    max_drop: float | None = None
    finetune_epochs: int | None = None
    distill: bool = True
    lr: float | None = None
    precision: str = "fp32"
    seed: int = 0
    opset: int = 18
    importance: str = "auto"
    schedule: str = "auto"
    probe_steps: int | None = None  # None: a tenth of finetune_steps (3..30; 30 on a minutes-only budget)

    def __post_init__(self) -> None:
        from edgemap.compress.prune_choice import ITERATIVE_STEPS, check_choice

        check_choice(self.importance, self.schedule)
        if self.probe_steps is not None and self.probe_steps < ITERATIVE_STEPS:
            raise EdgemapError(f"prune_user_model: probe_steps must be >= {ITERATIVE_STEPS}, got {self.probe_steps}")
        if not 0 < self.ratio < 1:
            raise EdgemapError(f"prune_user_model: ratio must lie in (0, 1), got {self.ratio}")
        if (self.finetune_epochs is not None and self.finetune_epochs < 0) or (self.round_to is not None and self.round_to < 1):
            raise EdgemapError("prune_user_model: finetune_epochs must be >= 0 and round_to >= 1")
        if self.finetune_epochs is None:
            self.budget()  # validates steps, minutes, optimizer, lr
            if self.precision != "fp32":
                raise EdgemapError("prune_user_model: bf16 fine-tuning runs by epochs; give finetune_epochs with it")
        if self.max_drop is not None and self.max_drop < 0:
            raise EdgemapError(f"prune_user_model: max_drop must be >= 0, got {self.max_drop}")

    def budget(self, lr: float | None = None):  # noqa: ANN201 - FinetuneBudget
        """The fine-tuning budget this config describes."""
        from edgemap.train.budget import FinetuneBudget

        return FinetuneBudget(max_steps=self.finetune_steps, max_minutes=self.finetune_minutes, optimizer=self.optimizer,
                              lr=self.lr if lr is None else lr, max_drop=self.max_drop, seed=self.seed)


def finetune_lr(model) -> float:  # noqa: ANN001 - nn.Module
    """A model converted from ONNX usually has its BatchNorm folded into the convolutions; such a plain conv
    stack diverges at the rate BatchNorm models take."""
    from edgemap.train.budget import has_batchnorm

    return FINETUNE_LR if has_batchnorm(model) else FINETUNE_LR_NO_BN


@passes.pass_function(PruneUserModel)
def prune_user_model_pass(cfg: PruneUserModel, source: str | Path, out: str | Path, ctx: PassContext) -> CompressionReport:
    """Prune, fine-tune (ctx.train_set, fed as ctx.norm says) and export; the report gives MACs and parameters."""
    from edgemap.models.onnx_export import export_onnx
    from edgemap.models.stats import count_macs, count_parameters
    from edgemap.pipeline.convert_passes import torch_form

    if ctx.train_set is None and cfg.finetune_epochs != 0:
        raise EdgemapError("prune_user_model: fine-tuning needs training data")
    original, _, fixed = torch_form(ctx.source)
    shape = tuple(ctx.source.input_shape)
    report = CompressionReport("prune_user_model", passes.config_to_dict(cfg), output=str(out))
    with timed(report):
        teacher = original.eval() if cfg.distill else None
        if cfg.finetune_epochs is None:
            pruned, report.extra["finetune"] = finetune_on_budget(cfg, original, teacher, ctx, shape)
        else:
            pruned, choice = _prune_fixed(cfg, original, ctx, shape, "fine-tuning by epochs: no probe")
            report.extra["pruning"] = choice.to_dict()
            report.extra["finetune_history"] = _finetune_epochs(cfg, pruned, teacher, ctx)
        export_onnx(pruned.eval(), out, shape, cfg.opset, dynamic_batch=fixed is None, batch=fixed)
    report.params = (count_parameters(original), count_parameters(pruned))
    report.macs = (count_macs(original, shape), count_macs(pruned, shape))
    report.file_bytes = (file_size(source), file_size(out))
    return report


def _finetune_epochs(cfg: PruneUserModel, pruned, teacher, ctx: PassContext) -> list[dict]:  # noqa: ANN001
    from edgemap.compress.finetune import finetune

    return finetune(pruned, ctx.train_set, cfg.finetune_epochs, cfg.lr or finetune_lr(pruned), ctx.norm, teacher=teacher,
                    run_dir=ctx.sub_run_dir("prune_user"), seed=cfg.seed, progress=ctx.progress, precision=cfg.precision)


def _prune_fixed(cfg: PruneUserModel, original, ctx: PassContext, shape: tuple[int, ...], why: str):  # noqa: ANN001, ANN202
    """Prune by the given criterion and schedule ('auto': L2 one-shot) without a probe: (pruned model, PruneChoice)."""
    from edgemap.compress.prune_choice import fixed_choice, prune_with

    importance = "l2" if cfg.importance == "auto" else cfg.importance
    schedule = "oneshot" if cfg.schedule == "auto" else cfg.schedule
    if importance == "taylor" and ctx.train_set is None:
        raise EdgemapError("prune_user_model: taylor importance needs training data")
    given = cfg.importance != "auto" and cfg.schedule != "auto"
    return (prune_with(original, cfg.ratio, cfg.round_to, shape, importance, schedule, ctx.train_set, ctx.norm),
            fixed_choice(importance, schedule, "as given" if given else why))


def finetune_on_budget(cfg: PruneUserModel, original, teacher, ctx: PassContext,  # noqa: ANN001
                       shape: tuple[int, ...]) -> tuple:
    """Prune (criterion and schedule chosen on a probe when 'auto' and images can be held out), then fine-tune within
    the config's budget, less what the probe spent; early stopping is judged on training images held out of the
    fine-tuning, against the unpruned model's accuracy on them. Returns (pruned model, FinetuneResult.to_dict() plus
    'pruning' (the choice), 'probe_steps', 'given_up' (why the ratio could not be brought within max_drop, or None)
    and 'target' (the unpruned model's accuracy))."""
    import dataclasses
    import time

    from edgemap.compress.prune_choice import choose_pruning
    from edgemap.train.budget import finetune
    from edgemap.train.evaluate import evaluate

    train, val = hold_out(ctx.train_set, cfg.seed)
    target = evaluate(original, val, ctx.norm).top1 if val is not None else None
    budget = cfg.budget() if val is not None else dataclasses.replace(cfg.budget(), max_drop=None)
    t0, spent = time.perf_counter(), 0
    if val is not None and "auto" in (cfg.importance, cfg.schedule):
        pruned, choice, spent = choose_pruning(original, cfg.ratio, cfg.round_to, shape, train, val, ctx.norm, budget,
                                               teacher, cfg.importance, cfg.schedule, probe_steps(cfg))
        budget = _rest_of(budget, spent, time.perf_counter() - t0, choice.lr)
    else:
        pruned, choice = _prune_fixed(cfg, original, ctx, shape, "no held-out images to choose on")
    run = finetune(pruned, train, ctx.norm, budget, val_set=val, target=target, teacher=teacher)
    # against the whole budget: the probe's steps and time count too
    run = dataclasses.replace(run, steps=run.steps + spent, seconds=round(time.perf_counter() - t0, 2),
                              budget={"max_steps": cfg.finetune_steps, "max_minutes": cfg.finetune_minutes})
    result = run.to_dict()
    result.update(pruning=choice.to_dict(), probe_steps=spent, target=None if target is None else round(target, 2),
                  held_out=0 if val is None else len(val))
    result["given_up"] = given_up(result, cfg.max_drop)
    return pruned, result


def probe_steps(cfg: PruneUserModel) -> int:
    """Fine-tuning steps per candidate of the criterion/schedule probe."""
    from edgemap.compress.prune_choice import ITERATIVE_STEPS

    if cfg.probe_steps is not None:
        return cfg.probe_steps
    if cfg.finetune_steps is None:
        return PROBE_MAX
    return max(ITERATIVE_STEPS, min(PROBE_MAX, round(cfg.finetune_steps * PROBE_SHARE)))


def _rest_of(budget, steps: int, seconds: float, lr: float | None):  # noqa: ANN001, ANN202 - FinetuneBudget
    """The budget left after the probe (at least one step / six seconds), at the probe's learning rate."""
    import dataclasses

    return dataclasses.replace(
        budget, max_steps=None if budget.max_steps is None else max(1, budget.max_steps - steps),
        max_minutes=None if budget.max_minutes is None else max(0.1, budget.max_minutes - seconds / 60),
        lr=budget.lr if budget.lr is not None else lr)


def hold_out(train_set, seed: int):  # noqa: ANN001, ANN201 - ImageSet -> (ImageSet, ImageSet | None)
    """A seeded share of the training images (HELD_OUT, at most a fifth) kept out of fine-tuning to judge it;
    fewer than 50 images: none (no early stopping)."""
    import numpy as np

    n = min(HELD_OUT, len(train_set) // 5)
    if n < 10:
        return train_set, None
    held = np.zeros(len(train_set), dtype=bool)
    held[np.random.default_rng(seed).choice(len(train_set), n, replace=False)] = True
    return train_set.subset(~held), train_set.subset(held)


def given_up(result: dict, max_drop: float | None) -> str | None:
    """Why the ratio ends outside the bound ('best 81.2 % at step 250, 3.1 points below ...'), or None."""
    if max_drop is None or result.get("target") is None or result["best_accuracy"] is None:
        return None
    gap = result["target"] - result["best_accuracy"]
    if gap <= max_drop:
        return None
    return (f"{result['stopped']}: best {result['best_accuracy']:.1f} % at step {result['best_step']} on "
            f"{result['held_out']} held-out images, {gap:.1f} points below the unpruned model's {result['target']:.1f} % "
            f"(fine-tuning bound {max_drop:g})")
