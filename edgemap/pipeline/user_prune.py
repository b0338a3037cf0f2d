"""Channel pruning of a user's model (ONNX, .pt2, entry point): torch form -> prune -> fine-tune with distillation
from the original -> FP32 ONNX. An edgemap checkpoint is pruned by prune_channels instead (it keeps its sidecar)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgemap.compress.context import PassContext
from edgemap.compress.report import CompressionReport, file_size, timed
from edgemap.core import passes
from edgemap.errors import EdgemapError

FINETUNE_LR = 0.05  # fine-tuning learning rate of a pruned model with BatchNorm
FINETUNE_LR_NO_BN = 0.01  # without BatchNorm (folded by ONNX exporters) 0.05 diverges: loss 477 in 7 steps on ByomNet


@passes.register_pass("prune_user_model", consumes=("onnx", "pt2", "entry_point"), produces="onnx", needs=("train",),
                      deterministic=False)
@dataclass(frozen=True)
class PruneUserModel:
    """Remove `ratio` of the channels of every conv/linear layer (widths rounded to `round_to`; the classifier's
    outputs kept), fine-tune `finetune_epochs` with distillation from the unpruned model (lr None: 0.05 with
    BatchNorm, 0.01 without), and export FP32 ONNX at the model's batch (fixed or dynamic)."""

    ratio: float = 0.5
    round_to: int | None = 8
    finetune_epochs: int = 2
    distill: bool = True
    lr: float | None = None
    precision: str = "fp32"
    seed: int = 0
    opset: int = 18

    def __post_init__(self) -> None:
        if not 0 < self.ratio < 1:
            raise EdgemapError(f"prune_user_model: ratio must lie in (0, 1), got {self.ratio}")
        if self.finetune_epochs < 0 or (self.round_to is not None and self.round_to < 1):
            raise EdgemapError("prune_user_model: finetune_epochs must be >= 0 and round_to >= 1")


def finetune_lr(model) -> float:  # noqa: ANN001 - nn.Module
    """A model converted from ONNX usually has its BatchNorm folded into the convolutions; such a plain conv
    stack diverges at the rate BatchNorm models take."""
    from torch import nn

    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    return FINETUNE_LR if has_bn else FINETUNE_LR_NO_BN


@passes.pass_function(PruneUserModel)
def prune_user_model_pass(cfg: PruneUserModel, source: str | Path, out: str | Path, ctx: PassContext) -> CompressionReport:
    """Prune, fine-tune (ctx.train_set, fed as ctx.norm says) and export; the report gives MACs and parameters."""
    from edgemap.compress.finetune import finetune
    from edgemap.compress.prune import PruneChannels, prune_model
    from edgemap.models.onnx_export import export_onnx
    from edgemap.pipeline.convert_passes import torch_form
    from edgemap.models.stats import count_macs, count_parameters

    if ctx.train_set is None and cfg.finetune_epochs:
        raise EdgemapError("prune_user_model: fine-tuning needs training data")
    original, _, fixed = torch_form(ctx.source)
    shape = tuple(ctx.source.input_shape)
    report = CompressionReport("prune_user_model", passes.config_to_dict(cfg), output=str(out))
    with timed(report):
        pruned = prune_model(original, PruneChannels(ratio=cfg.ratio, round_to=cfg.round_to), shape)
        history = finetune(pruned, ctx.train_set, cfg.finetune_epochs, cfg.lr or finetune_lr(pruned), ctx.norm,
                           teacher=original.eval() if cfg.distill else None, run_dir=ctx.sub_run_dir("prune_user"),
                           seed=cfg.seed, progress=ctx.progress, precision=cfg.precision)
        export_onnx(pruned.eval(), out, shape, cfg.opset, dynamic_batch=fixed is None, batch=fixed)
    report.params = (count_parameters(original), count_parameters(pruned))
    report.macs = (count_macs(original, shape), count_macs(pruned, shape))
    report.file_bytes = (file_size(source), file_size(out))
    report.extra["finetune_history"] = history
    return report
