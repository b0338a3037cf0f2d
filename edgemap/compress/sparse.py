"""Unstructured magnitude pruning: zero the smallest weights (globally or per layer), store them compactly.

The file shrinks (bit-packed sparse storage), but dense CPU kernels still multiply the zeros:
the report measures the latency and says plainly that no speedup is to be expected.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn
from torch.nn.utils import prune as tprune

from edgemap.compress.context import PassContext
from edgemap.compress.finetune import finetune
from edgemap.compress.measure import latency_pair, torch_accuracy, torch_latency
from edgemap.compress.report import CompressionReport, file_size, timed
from edgemap.core.passes import config_to_dict, pass_function, register_pass
from edgemap.errors import EdgemapError
from edgemap.models.checkpoint import load_checkpoint, save_checkpoint
from edgemap.models.stats import count_macs, count_parameters

NO_SPEEDUP_NOTE = ("unstructured sparsity: dense CPU kernels (PyTorch, ONNX Runtime) still multiply the zeros, so "
                   "the model is not faster; the gain is the smaller file")


@register_pass("prune_magnitude", consumes="checkpoint", produces="checkpoint", deterministic=False)
@dataclass(frozen=True)
class PruneMagnitude:
    """Zero the `sparsity` fraction of smallest-magnitude conv/linear weights, over the whole net (global)
    or in every layer; layer_sparsity overrides per module name. Optional fine-tuning keeps the zeros."""

    sparsity: float = 0.5
    scope: str = "global"
    layer_sparsity: dict = field(default_factory=dict)
    finetune_epochs: int = 0
    finetune_lr: float = 0.02
    batch_size: int = 256

    def __post_init__(self) -> None:
        for name, s in [("sparsity", self.sparsity), *self.layer_sparsity.items()]:
            if not 0 < float(s) < 1:
                raise EdgemapError(f"prune_magnitude: {name} must lie in (0, 1), got {s}")
        if self.scope not in ("global", "layer"):
            raise EdgemapError(f"prune_magnitude: scope must be global or layer, got {self.scope!r}")
        if self.finetune_epochs < 0:
            raise EdgemapError("prune_magnitude: finetune_epochs must be >= 0")


def _targets(model: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def sparsify(model: nn.Module, cfg: PruneMagnitude) -> nn.Module:
    """A copy of `model` with masks applied (torch.nn.utils.prune re-parametrisation, so training keeps the zeros)."""
    model = copy.deepcopy(model)
    targets = _targets(model)
    unknown = sorted(set(cfg.layer_sparsity) - set(targets))
    if unknown:
        raise EdgemapError(f"prune_magnitude: no conv/linear layer named {', '.join(unknown)}")
    rest = {n: m for n, m in targets.items() if n not in cfg.layer_sparsity}
    if cfg.scope == "global" and rest:
        tprune.global_unstructured([(m, "weight") for m in rest.values()], tprune.L1Unstructured, amount=cfg.sparsity)
    else:
        for m in rest.values():
            tprune.l1_unstructured(m, "weight", amount=cfg.sparsity)
    for name, amount in cfg.layer_sparsity.items():
        tprune.l1_unstructured(targets[name], "weight", amount=float(amount))
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold the masks into the weights (plain parameters again) and return the model."""
    for m in _targets(model).values():
        if tprune.is_pruned(m):
            tprune.remove(m, "weight")
    return model


def sparsity_of(model: nn.Module) -> dict:
    """Fraction of zero weights, over all conv/linear weights and per layer."""
    per = {n: float((m.weight == 0).float().mean()) for n, m in _targets(model).items()}
    total = sum(m.weight.numel() for m in _targets(model).values())
    zeros = sum(int((m.weight == 0).sum()) for m in _targets(model).values())
    return {"overall": zeros / max(1, total), "per_layer": {k: round(v, 4) for k, v in per.items()}}


@pass_function(PruneMagnitude)
def prune_magnitude_checkpoint(cfg: PruneMagnitude, source: str | Path, out: str | Path,
                               ctx: PassContext) -> CompressionReport:
    """Sparsify a checkpoint (and fine-tune), save it bit-packed, report size, accuracy and measured latency."""
    model, info = load_checkpoint(source)
    report = CompressionReport("prune_magnitude", config_to_dict(cfg), notes=[NO_SPEEDUP_NOTE])
    with timed(report):
        if cfg.finetune_epochs and ctx.train_set is None:
            raise EdgemapError("prune_magnitude: fine-tuning needs training data")
        sparse = sparsify(model, cfg)
        history = []
        if cfg.finetune_epochs:
            history = finetune(sparse, ctx.train_set, cfg.finetune_epochs, cfg.finetune_lr, info.normalization,  # type: ignore[arg-type]
                               cfg.batch_size, run_dir=ctx.sub_run_dir("prune_magnitude"), progress=ctx.progress)
        make_permanent(sparse)
        report.accuracy = {"before": torch_accuracy(model, ctx.eval_set, info.normalization),
                           "after": torch_accuracy(sparse, ctx.eval_set, info.normalization)}
        new_info = dataclasses.replace(info, metrics={"test": report.accuracy["after"]},
                                       training={**info.training, "compression": [report.config], "finetune_history": history})
        save_checkpoint(sparse, new_info, out, sparse=True)
        report.output = str(out)
    nonzero = sum(int((p != 0).sum()) for p in sparse.parameters())
    report.params = (count_parameters(model), nonzero)
    report.macs = (count_macs(model, info.input_shape), count_macs(sparse, info.input_shape))
    report.file_bytes = (file_size(source), file_size(out))
    report.extra["sparsity"] = sparsity_of(sparse)
    report.extra["params_meaning"] = "after: non-zero parameters; MACs after: dense kernels, zeros included"
    if ctx.latency_runs:
        lat = torch_latency({"before": model, "after": sparse}, info.input_shape, ctx.latency_runs)
        report.latency = {**latency_pair(lat["before"], lat["after"]), "runtime": "torch eager, batch 1"}
    return report
