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
from edgemap.compress.prune_budget import HELD_OUT, BudgetPlan, check_plan, given_up, hold_out  # noqa: F401 - hold_out, given_up: API
from edgemap.compress.report import CompressionReport, file_size, timed
from edgemap.core import passes
from edgemap.errors import EdgemapError

FINETUNE_LR = 0.05  # fixed-epoch fine-tuning learning rate of a pruned model with BatchNorm
FINETUNE_LR_NO_BN = 0.01  # without BatchNorm (folded by ONNX exporters) 0.05 diverges: loss 477 in 7 steps on ByomNet
FINETUNE_STEPS = 300  # default step budget: 6,000 images x 6 epochs is only 140 steps at batch 256 (issue 22)


@passes.register_pass("prune_user_model", consumes=("onnx", "pt2", "entry_point"), produces="onnx", needs=("train",),
                      deterministic=False)
@dataclass(frozen=True)
class PruneUserModel:
    """Remove `ratio` of the channels of every conv/linear layer (widths rounded to `round_to`; the classifier's
    outputs kept), fine-tune with distillation from the unpruned model within `finetune_steps` steps and/or
    `finetune_minutes` (optimizer "auto": AdamW without BatchNorm, SGD with it; lr None: a range test), stopping once
    within `max_drop` points of the unpruned model (a paired drop, its one-sided 95 % upper bound) on the context's
    validation images, else on `held_out` training images held out; export FP32 ONNX at the model's batch.
    finetune_epochs (not None): the fixed-epoch fine-tuning instead (lr None: 0.05 with BatchNorm, 0.01 without).
    importance ('auto', 'l1', 'l2', 'taylor') and schedule ('auto', 'oneshot', 'iterative'): 'auto' is chosen on a probe
    of `probe_steps` fine-tuning steps per candidate (None: a tenth of the step budget, 3 to 30), by held-out accuracy
    (budget fine-tuning only; by epochs, 'auto' is L2 one-shot)."""

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
    held_out: int = HELD_OUT  # training images held out to judge the fine-tuning when ctx.val_set is None

    def __post_init__(self) -> None:
        check_plan("prune_user_model", self.importance, self.schedule, self.probe_steps, self.held_out)
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

    def plan(self) -> BudgetPlan:
        """How the pass prunes and fine-tunes on its budget."""
        return BudgetPlan(self.budget(), self.importance, self.schedule, self.probe_steps, self.seed, self.held_out)

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


def fixed_batch_blocker(fmt: str, fixed_batch: int | None) -> str | None:
    """Why a model cannot be fine-tuned after pruning, or None: a torch.export program saved at one batch size
    computes that batch only (its graph holds the size), so it cannot train on batches."""
    if fmt == "pt2" and fixed_batch is not None:
        return (f"the .pt2 program was exported at batch {fixed_batch} only; re-export it with a dynamic batch "
                "(torch.export.export(..., dynamic_shapes=...)) to prune and fine-tune it")
    return None


@passes.pass_function(PruneUserModel)
def prune_user_model_pass(cfg: PruneUserModel, source: str | Path, out: str | Path, ctx: PassContext) -> CompressionReport:
    """Prune, fine-tune (ctx.train_set, fed as ctx.norm says) and export; the report gives MACs and parameters."""
    from edgemap.compress.prune_budget import finetune_notes, prune_on_budget
    from edgemap.compress.prune import ratio_pruner
    from edgemap.models.onnx_export import export_onnx
    from edgemap.models.stats import count_macs, count_parameters
    from edgemap.pipeline.convert_passes import torch_form

    if ctx.train_set is None and cfg.finetune_epochs != 0:
        raise EdgemapError("prune_user_model: fine-tuning needs training data")
    original, _, fixed = torch_form(ctx.source)
    blocker = fixed_batch_blocker(ctx.source.format, fixed)
    if blocker is not None and cfg.finetune_epochs != 0:
        raise EdgemapError(f"prune_user_model: {blocker}")
    shape = tuple(ctx.source.input_shape)
    report = CompressionReport("prune_user_model", passes.config_to_dict(cfg), output=str(out))
    with timed(report):
        teacher = original.eval() if cfg.distill else None
        prune = ratio_pruner(original, cfg.ratio, cfg.round_to, shape, ctx.train_set, ctx.norm)
        if cfg.finetune_epochs is None:
            pruned, report.extra["finetune"] = prune_on_budget(prune, original, ctx.train_set, ctx.norm, teacher, cfg.plan(),
                                                               val_set=ctx.val_set)
            report.notes.extend(finetune_notes(report.extra["finetune"]))
        else:  # the fixed way: no probe ('auto': L2, one-shot)
            importance = "l2" if cfg.importance == "auto" else cfg.importance
            pruned = prune(importance, "oneshot" if cfg.schedule == "auto" else cfg.schedule, None)
            report.extra["finetune_history"] = _finetune_epochs(cfg, pruned, teacher, ctx)
        export_onnx(pruned.eval(), out, shape, cfg.opset, dynamic_batch=fixed is None, batch=fixed)
    report.params = (count_parameters(original), count_parameters(pruned))
    report.macs = (count_macs(original, shape), count_macs(pruned, shape))
    if "finetune" in report.extra:  # what pruning really removed, for the map's line per ratio
        report.extra["finetune"]["macs"] = list(report.macs)
    report.file_bytes = (file_size(source), file_size(out))
    return report


def _finetune_epochs(cfg: PruneUserModel, pruned, teacher, ctx: PassContext) -> list[dict]:  # noqa: ANN001
    from edgemap.compress.finetune import finetune

    return finetune(pruned, ctx.train_set, cfg.finetune_epochs, cfg.lr or finetune_lr(pruned), ctx.norm, teacher=teacher,
                    run_dir=ctx.sub_run_dir("prune_user"), seed=cfg.seed, progress=ctx.progress, precision=cfg.precision)
