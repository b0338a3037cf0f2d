"""Structured (channel) pruning with Torch-Pruning's dependency graph: channels are physically removed.

The dependency graph keeps coupled layers consistent (a residual sum prunes the same channels
on both branches; a depthwise conv follows its input), so the pruned model is a smaller dense
model that runs faster on any runtime. The classifier's output size is never pruned.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from edgemap.compress.context import PassContext
from edgemap.compress.finetune import distillation_teacher, finetune, record_soft_targets, trained_jpeg_share
from edgemap.compress.measure import latency_pair, torch_accuracy, torch_latency
from edgemap.compress.prune_budget import HELD_OUT
from edgemap.compress.prune_widths import INT8_ALIGN, alignment_note  # noqa: F401 - INT8_ALIGN: API
from edgemap.compress.report import CompressionReport, file_size, timed
from edgemap.core.passes import config_to_dict, pass_function, register_pass
from edgemap.data.dataset import ImageSet
from edgemap.errors import EdgemapError
from edgemap.models.checkpoint import (CheckpointInfo, conv_widths, layer_shapes, load_checkpoint, save_checkpoint,
                                       to_float_input)
from edgemap.models.stats import count_macs, count_parameters
from edgemap.train.loop import PRECISIONS

IMPORTANCES = ("auto", "l1", "l2", "taylor")  # auto: chosen on a probe when fine-tuning on a budget, else l2
FINETUNE_LR = 0.05  # fixed-epoch fine-tuning's peak learning rate
_TARGET_STEPS = 40  # resolution of the ratio search when a MAC target is given
_MAX_RATIO = 0.95  # never remove a whole layer


@register_pass("prune_channels", consumes="checkpoint", produces="checkpoint", needs=("train",), deterministic=False)
@dataclass(frozen=True)
class PruneChannels:
    """Remove a fraction of the channels of every conv/linear layer (or reach a MAC target), then fine-tune.

    ratio: fraction of channels removed (per layer, or over the whole net when global_pruning).
    target_macs: instead of ratio, prune in small steps until the model has at most this many MACs.
    layer_ratios: per-layer overrides, module name -> ratio.
    keep_layers: module names whose output channels are never pruned (e.g. the stem conv, whose few channels
    carry all of the input image); the classifier's outputs are always kept.
    iterative_steps: reach the ratio in this many steps (scores recomputed between steps),
    with step_finetune_epochs of fine-tuning after each step but the last.
    finetune_epochs None (the default): fine-tune on a budget of finetune_steps and/or finetune_minutes
    (edgemap.compress.prune_budget: AdamW without BatchNorm, SGD with it; finetune_lr None: a range test; stop once
    within max_drop points of the unpruned model - a paired drop's upper bound - on the context's validation images,
    else on `held_out` training images held out); importance "auto" and one step are
    then chosen for the model on a probe of probe_steps per candidate (L2/Taylor, one-shot/iterative).
    finetune_epochs N: the fixed way, N epochs (0: no fine-tuning); distill: use the unpruned model as teacher (Hinton loss with
    temperature and alpha); teacher_mirror: that teacher's logits averaged over each image and its mirror;
    jpeg_augment: share of fine-tuning images swapped for a JPEG round trip (robustness to compressed inputs);
    None: the share the checkpoint was trained with (its sidecar), so fine-tuning keeps what training taught.
    precision: "bf16" fine-tunes under CPU autocast to bfloat16 (faster only on some CPUs, see TrainConfig).
    mixup: Beta parameter of mixup during fine-tuning (0 = off); with distill the teacher labels the blended images.
    norm_bias_decay: False exempts BatchNorm parameters and biases from the fine-tuning's weight decay.
    seed: fine-tuning's seed (a recipe records it, so a replay fine-tunes the same way).
    """

    ratio: float | None = 0.5
    target_macs: int | None = None
    importance: str = "auto"
    global_pruning: bool = False
    layer_ratios: dict = field(default_factory=dict)
    keep_layers: tuple[str, ...] = ()
    iterative_steps: int = 1
    step_finetune_epochs: int = 0
    round_to: int | None = None
    finetune_epochs: int | None = None  # None: fine-tune on the budget below; 0: no fine-tuning; N: N epochs
    finetune_steps: int | None = 300
    finetune_minutes: float | None = None
    optimizer: str = "auto"
    max_drop: float | None = None
    probe_steps: int | None = None
    held_out: int = HELD_OUT  # training images held out to judge budget fine-tuning when ctx.val_set is None
    finetune_lr: float | None = None  # None: a range test on the budget, 0.05 by epochs
    batch_size: int = 256
    distill: bool = False
    temperature: float = 4.0
    alpha: float = 0.5
    teacher_mirror: bool = False
    jpeg_augment: float | None = None
    weight_decay: float = 5e-4
    norm_bias_decay: bool = True
    precision: str = "fp32"
    mixup: float = 0.0
    seed: int = 0  # fine-tuning's shuffling and augmentation

    def __post_init__(self) -> None:
        if isinstance(self.keep_layers, str) or not all(isinstance(n, str) for n in self.keep_layers):
            raise EdgemapError(f"prune_channels: keep_layers must be a list of module names, got {self.keep_layers!r}")
        both = sorted(set(self.keep_layers) & set(self.layer_ratios))
        if both:
            raise EdgemapError(f"prune_channels: {', '.join(both)} is both kept and given a ratio")
        if self.mixup < 0:
            raise EdgemapError(f"prune_channels: mixup must be >= 0 (0: off), got {self.mixup}")
        if self.precision not in PRECISIONS:
            raise EdgemapError(f"prune_channels: precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if (self.ratio is None) == (self.target_macs is None):
            raise EdgemapError("prune_channels: give exactly one of ratio and target_macs")
        for name, r in [("ratio", self.ratio), *self.layer_ratios.items()]:
            if r is not None and not 0 < float(r) < 1:
                raise EdgemapError(f"prune_channels: {name} must lie in (0, 1), got {r}")
        if self.target_macs is not None and self.target_macs <= 0:
            raise EdgemapError(f"prune_channels: target_macs must be positive, got {self.target_macs}")
        if self.importance not in IMPORTANCES:
            raise EdgemapError(f"prune_channels: importance must be one of {', '.join(IMPORTANCES)}, got {self.importance!r}")
        if self.iterative_steps < 1 or (self.finetune_epochs or 0) < 0 or self.step_finetune_epochs < 0:
            raise EdgemapError("prune_channels: iterative_steps must be >= 1 and epochs >= 0")
        if self.round_to is not None and self.round_to < 1:
            raise EdgemapError("prune_channels: round_to must be >= 1")
        if (self.jpeg_augment is not None and not 0 <= self.jpeg_augment <= 1) or self.weight_decay < 0:
            raise EdgemapError("prune_channels: jpeg_augment must lie in [0, 1] and weight_decay be >= 0")
        if not 0 <= self.alpha <= 1 or self.temperature <= 0:
            raise EdgemapError("prune_channels: alpha must lie in [0, 1] and temperature be positive")
        if self.teacher_mirror and not self.distill:
            raise EdgemapError("prune_channels: teacher_mirror averages the distillation teacher; it needs distill")
        if self.finetune_epochs is None:
            self._check_budget()


    def _check_budget(self) -> None:
        from edgemap.compress.prune_budget import check_plan

        try:
            self.budget()  # validates steps, minutes, optimizer, lr
        except EdgemapError as exc:
            raise EdgemapError(f"prune_channels: {exc}") from None
        check_plan("prune_channels", self.importance, "oneshot", self.probe_steps, self.held_out)
        fixed = [n for n, bad in (("step_finetune_epochs", self.step_finetune_epochs), ("mixup", self.mixup),
                                  ("precision bf16", self.precision != "fp32"), ("jpeg_augment", self.jpeg_augment))
                 if bad]
        if fixed:
            raise EdgemapError(f"prune_channels: {', '.join(fixed)} belong to fine-tuning by epochs; give finetune_epochs "
                               "with them (the default fine-tunes on a step/minute budget)")
        if self.max_drop is not None and self.max_drop < 0:
            raise EdgemapError(f"prune_channels: max_drop must be >= 0, got {self.max_drop}")

    def budget(self):  # noqa: ANN201 - FinetuneBudget
        """The fine-tuning budget (finetune_epochs None)."""
        from edgemap.train.budget import FinetuneBudget

        return FinetuneBudget(max_steps=self.finetune_steps, max_minutes=self.finetune_minutes, optimizer=self.optimizer,
                              lr=self.finetune_lr, max_drop=self.max_drop, seed=self.seed, temperature=self.temperature,
                              distill_alpha=self.alpha)

    def plan(self):  # noqa: ANN201 - BudgetPlan
        """What prune_on_budget needs: 'auto' importance probes the schedule too unless iterative_steps > 1 or a MAC
        target is given."""
        from edgemap.compress.prune_budget import BudgetPlan

        fixed = self.iterative_steps > 1 or self.target_macs is not None or self.importance != "auto"
        schedule = ("oneshot" if self.iterative_steps == 1 else "iterative") if fixed else "auto"
        return BudgetPlan(self.budget(), self.importance, schedule, self.probe_steps, self.seed, self.held_out)


def parse_layer_ratios(items: list[str]) -> dict[str, float]:
    """Command-line MODULE=RATIO items -> {module name: ratio} (the ratios are checked by PruneChannels)."""
    ratios = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            if not name.strip():
                raise ValueError
            ratios[name.strip()] = float(value)
        except ValueError:
            raise EdgemapError(f"prune_channels: a layer ratio must read MODULE=RATIO, got {item!r}") from None
    return ratios


def output_layers(model: nn.Module) -> list[nn.Module]:
    """The classifier: the last Linear (or, without one, the last Conv2d) in module order."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    last = linears[-1:] or convs[-1:]
    return last


def _importance(name: str):  # noqa: ANN202 - a torch_pruning Importance
    import torch_pruning as tp

    if name == "taylor":
        return tp.importance.GroupTaylorImportance()  # "auto" outside a budget probe: l2
    return tp.importance.GroupMagnitudeImportance(p=1 if name == "l1" else 2)


def _pruner(model: nn.Module, example: torch.Tensor, cfg: PruneChannels, ratio: float, steps: int,  # noqa: ANN202
            exact_widths: bool = False):
    """Torch-Pruning's pruner. exact_widths (a ratio, not a MAC target, local pruning): each layer's kept width is the
    nearest multiple of round_to (compress/prune_widths.py), not Torch-Pruning's rounding down."""
    import torch_pruning as tp

    from edgemap.compress.prune_widths import layer_ratios

    modules = dict(model.named_modules())
    unknown = [n for n in [*cfg.layer_ratios, *cfg.keep_layers] if n not in modules]
    if unknown:
        layers = [n for n, m in modules.items() if isinstance(m, (nn.Conv2d, nn.Linear))]
        raise EdgemapError(f"prune_channels: no layer named {', '.join(unknown)} in this model; its conv/linear layers: "
                           f"{', '.join(layers[:12])}{', ...' if len(layers) > 12 else ''}")
    ignored = output_layers(model) + [modules[n] for n in cfg.keep_layers]
    given = {modules[n]: float(r) for n, r in cfg.layer_ratios.items()}
    exact = exact_widths and cfg.round_to is not None and not cfg.global_pruning
    ratios = layer_ratios(model, ratio, cfg.round_to, given, ignored) if exact else given
    try:
        return tp.pruner.BasePruner(
            model, example, importance=_importance(cfg.importance), global_pruning=cfg.global_pruning,
            pruning_ratio=ratio, pruning_ratio_dict=ratios or None, max_pruning_ratio=_MAX_RATIO, iterative_steps=steps,
            ignored_layers=ignored, round_to=None if exact else cfg.round_to)
    except Exception as exc:  # tracing failures surface as many exception types
        raise EdgemapError(f"prune_channels: Torch-Pruning cannot trace this model ({type(exc).__name__}: "
                           f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''})") from None


def _taylor_grads(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor] | None) -> None:
    """Taylor importance needs the loss gradient of every weight on a batch of real data."""
    if batch is None:
        raise EdgemapError("prune_channels: taylor importance needs a batch of labelled data")
    model.zero_grad(set_to_none=True)
    model.train()
    F.cross_entropy(model(batch[0]), batch[1]).backward()
    model.eval()


def prune_model(model: nn.Module, cfg: PruneChannels, input_shape: tuple[int, ...] = (3, 32, 32),
                batch: tuple[torch.Tensor, torch.Tensor] | None = None,
                between_steps=None) -> nn.Module:  # noqa: ANN001 - callable(model, step)
    """A pruned copy of `model` (the original is untouched). `batch` feeds Taylor importance;
    `between_steps(model, step)` runs after every step but the last (fine-tuning)."""
    model = copy.deepcopy(model).eval().to(memory_format=torch.contiguous_format)
    example = torch.zeros(1, *input_shape)
    num_out = _num_outputs(model, example)
    macs_before = count_macs(model, input_shape)
    if cfg.target_macs is not None:
        _prune_to_macs(model, cfg, example, batch)
    else:
        pruner = _pruner(model, example, cfg, float(cfg.ratio), cfg.iterative_steps, exact_widths=True)
        for step in range(cfg.iterative_steps):
            if cfg.importance == "taylor":
                _taylor_grads(model, batch)
            pruner.step()
            if between_steps is not None and step < cfg.iterative_steps - 1:
                between_steps(model, step)
    model.zero_grad(set_to_none=True)
    if _num_outputs(model, example) != num_out:
        raise EdgemapError("prune_channels: pruning changed the number of outputs (the classifier was pruned)")
    if count_macs(model, input_shape) >= macs_before:
        raise EdgemapError("prune_channels: nothing was pruned; Torch-Pruning's trace found no prunable channels "
                           "(a forward run under no_grad or through non-tensor values breaks its trace)")
    return model.eval()


def _prune_to_macs(model: nn.Module, cfg: PruneChannels, example: torch.Tensor, batch) -> None:  # noqa: ANN001
    """Prune in small steps until the MAC count falls to the target (error when even the maximum ratio misses it)."""
    pruner = _pruner(model, example, cfg, _MAX_RATIO, _TARGET_STEPS)
    shape = tuple(example.shape[1:])
    for _ in range(_TARGET_STEPS):
        if count_macs(model, shape) <= cfg.target_macs:
            return
        if cfg.importance == "taylor":
            _taylor_grads(model, batch)
        pruner.step()
    if count_macs(model, shape) > cfg.target_macs:
        raise EdgemapError(f"prune_channels: cannot reach {cfg.target_macs:,} MACs; the smallest reached is "
                           f"{count_macs(model, shape):,}")


def _num_outputs(model: nn.Module, example: torch.Tensor) -> int:
    with torch.no_grad():
        out = model(example)
    if not isinstance(out, torch.Tensor):
        raise EdgemapError(f"prune_channels: Torch-Pruning cannot trace this model (it returns a {type(out).__name__}, "
                           "not a tensor of logits)")
    return int(out.shape[-1])


def ratio_pruner(model: nn.Module, ratio: float, round_to: int | None, shape: tuple[int, ...], train: ImageSet | None,
                 norm):  # noqa: ANN001, ANN201 - Normalization or PreprocessSpec -> prune_choice.PruneFn
    """A PruneFn (prune_choice) removing `ratio` of the channels of every conv/linear layer (the classifier kept)."""
    from edgemap.compress.prune_choice import steps_of, taylor_batch

    def prune(importance: str, schedule: str, between=None) -> nn.Module:  # noqa: ANN001
        cfg = PruneChannels(ratio=ratio, round_to=round_to, importance=importance, iterative_steps=steps_of(schedule),
                            finetune_epochs=0)
        return prune_model(model, cfg, shape, taylor_batch(importance, train, norm), between_steps=between)

    return prune


@pass_function(PruneChannels)
def prune_checkpoint(cfg: PruneChannels, source: str | Path, out: str | Path, ctx: PassContext) -> CompressionReport:
    """Prune a checkpoint, fine-tune it (on a step/minute budget, or by epochs; optionally distilling from the
    unpruned model), save it with its new layer widths, and report parameters, MACs, file size, accuracy and
    measured batch-1 latency."""
    model, info = load_checkpoint(source)
    report = CompressionReport("prune_channels", config_to_dict(cfg))
    on_budget = cfg.finetune_epochs is None
    with timed(report):
        if ctx.train_set is None and (on_budget or cfg.importance == "taylor" or cfg.finetune_epochs
                                      or cfg.step_finetune_epochs):
            raise EdgemapError("prune_channels: fine-tuning and taylor importance need training data (finetune_epochs 0 "
                               "prunes without fine-tuning)")
        teacher = distillation_teacher(copy.deepcopy(model), cfg.teacher_mirror) if cfg.distill else None
        if teacher is not None and (on_budget or cfg.finetune_epochs + cfg.step_finetune_epochs > 0):
            record_soft_targets(report, teacher, ctx.train_set, info.normalization, cfg.temperature)
            if cfg.teacher_mirror:
                report.extra["teacher_accuracy"] = torch_accuracy(teacher, ctx.eval_set, info.normalization)
        before_acc = torch_accuracy(model, ctx.eval_set, info.normalization)
        if on_budget:
            pruned, history, pruned_acc = _prune_on_budget(cfg, model, info, ctx, teacher, report)
        else:
            pruned, history, pruned_acc = _prune_by_epochs(cfg, model, info, ctx, teacher)
        if note := alignment_note(conv_widths(model), conv_widths(pruned)):
            report.notes.append(note)
        report.accuracy = {"before": before_acc, "after": torch_accuracy(pruned, ctx.eval_set, info.normalization),
                           **({} if pruned_acc is None else {"pruned_before_finetune": pruned_acc})}
        _save_pruned(pruned, info, out, report, history)
    _fill_sizes(report, model, pruned, info.input_shape, source, out)
    if ctx.latency_runs:
        lat = torch_latency({"before": model, "after": pruned}, info.input_shape, ctx.latency_runs)
        report.latency = {**latency_pair(lat["before"], lat["after"]), "runtime": "torch eager, batch 1"}
    return report


def _prune_by_epochs(cfg: PruneChannels, model: nn.Module, info: CheckpointInfo, ctx: PassContext,
                     teacher: nn.Module | None) -> tuple[nn.Module, list[dict], dict | None]:
    """The fixed way: prune (fine-tuning step_finetune_epochs between steps), then finetune_epochs epochs.
    Returns (pruned model, history, accuracy before fine-tuning)."""
    batch = _first_batch(ctx.train_set, info, cfg.batch_size) if ctx.train_set is not None else None

    def tune(m: nn.Module, epochs: int, tag: str) -> list[dict]:
        return finetune(m, ctx.train_set, epochs, cfg.finetune_lr or FINETUNE_LR, info.normalization,  # type: ignore[arg-type]
                        cfg.batch_size, teacher, cfg.temperature, cfg.alpha, ctx.sub_run_dir(f"prune_{tag}"),
                        seed=cfg.seed, progress=ctx.progress,
                        jpeg_augment=trained_jpeg_share(info) if cfg.jpeg_augment is None else cfg.jpeg_augment,
                        weight_decay=cfg.weight_decay, precision=cfg.precision, mixup=cfg.mixup,
                        norm_bias_decay=cfg.norm_bias_decay)

    pruned = prune_model(model, cfg, info.input_shape, batch,
                         between_steps=lambda m, s: tune(m, cfg.step_finetune_epochs, f"step{s}"))
    pruned_acc = torch_accuracy(pruned, ctx.eval_set, info.normalization)
    return pruned, tune(pruned, cfg.finetune_epochs or 0, "final"), pruned_acc


def _prune_on_budget(cfg: PruneChannels, model: nn.Module, info: CheckpointInfo, ctx: PassContext,
                     teacher: nn.Module | None, report: CompressionReport) -> tuple[nn.Module, list[dict], None]:
    """Prune and fine-tune on the step/minute budget (edgemap.compress.prune_budget); report.extra['finetune']
    says how much of it was used, what criterion and schedule were kept and why, and whether the ratio was given up."""
    from edgemap.compress.prune_budget import finetune_notes, prune_on_budget
    from edgemap.compress.prune_choice import ITERATIVE_STEPS, taylor_batch

    def prune(importance: str, schedule: str, between=None) -> nn.Module:  # noqa: ANN001 - callable
        steps = 1 if schedule == "oneshot" else max(cfg.iterative_steps, ITERATIVE_STEPS if cfg.iterative_steps == 1 else 1)
        c = dataclasses.replace(cfg, importance=importance, iterative_steps=steps)
        return prune_model(model, c, info.input_shape, taylor_batch(importance, ctx.train_set, info.normalization), between)

    pruned, result = prune_on_budget(prune, model, ctx.train_set, info.normalization, teacher, cfg.plan(),  # type: ignore[arg-type]
                                     val_set=ctx.val_set)
    report.extra["finetune"] = result
    report.notes.extend(finetune_notes(result))
    if trained_jpeg_share(info) > 0:
        report.notes.append("fine-tuning on a budget does not apply the JPEG augmentation the checkpoint was trained "
                            "with; finetune_epochs (the fixed way) does")
    return pruned, result["history"], None


def _first_batch(data: ImageSet, info: CheckpointInfo, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return to_float_input(data.images[:n], info), torch.from_numpy(data.labels[:n])


def _save_pruned(pruned: nn.Module, info: CheckpointInfo, out: str | Path, report: CompressionReport,
                 history: list[dict]) -> None:
    new_info = dataclasses.replace(info, layers=layer_shapes(pruned), metrics={"test": report.accuracy.get("after")},
                                   training={**info.training, "compression": [report.config], "finetune_history": history})
    save_checkpoint(pruned, new_info, out)
    report.output = str(out)


def _fill_sizes(report: CompressionReport, model: nn.Module, pruned: nn.Module, shape: tuple[int, ...],
                source: str | Path, out: str | Path) -> None:
    report.params = (count_parameters(model), count_parameters(pruned))
    report.macs = (count_macs(model, shape), count_macs(pruned, shape))
    report.file_bytes = (file_size(source), file_size(out))
    if "finetune" in report.extra:  # what pruning really removed, for the map's line per ratio
        report.extra["finetune"]["macs"] = list(report.macs)
