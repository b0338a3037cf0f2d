"""Knowledge distillation: train a student (any zoo model, or a checkpoint such as a pruned model) from a teacher.

The report compares the student trained with the Hinton loss against the same student trained
without distillation on the same budget (epochs, data, schedule, seed), so the gain is measured,
not assumed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from edgemap.compress.context import PassContext
from edgemap.compress.finetune import distillation_teacher, finetune, record_soft_targets, trained_jpeg_share
from edgemap.compress.measure import latency_pair, torch_accuracy, torch_latency
from edgemap.compress.report import CompressionReport, file_size, timed
from edgemap.core.passes import config_to_dict, pass_function, register_pass
from edgemap.errors import EdgemapError
from edgemap.models import zoo
from edgemap.models.checkpoint import CheckpointInfo, layer_shapes, load_checkpoint, save_checkpoint
from edgemap.models.stats import count_macs, count_parameters
from edgemap.train.loop import PRECISIONS


@register_pass("distill", consumes="checkpoint", produces="checkpoint", needs=("train",), deterministic=False)
@dataclass(frozen=True)
class Distill:
    """Teacher (the pass's input checkpoint) -> student: a zoo name (fresh weights) or a .safetensors checkpoint.

    Loss: alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy.
    compare_baseline: also train the same student without the teacher, same budget, and report both.
    jpeg_augment: share of training images given a JPEG round trip (None: what the teacher was trained with).
    precision: "bf16" trains student and baseline under CPU autocast to bfloat16 (see TrainConfig).
    mixup: Beta parameter of mixup for student and baseline (0 = off); the teacher labels the blended images.
    teacher_mirror: the student learns from the teacher's logits averaged over each image and its mirror (see
    MirrorAveraged); the reported teacher accuracy is then that ensemble's.
    """

    student: str = "writeup_cnn"
    epochs: int = 5
    lr: float = 0.05
    batch_size: int = 256
    temperature: float = 4.0
    alpha: float = 0.9
    teacher_mirror: bool = False
    compare_baseline: bool = True
    seed: int = 0
    jpeg_augment: float | None = None
    precision: str = "fp32"
    mixup: float = 0.0

    def __post_init__(self) -> None:
        if self.mixup < 0:
            raise EdgemapError(f"distill: mixup must be >= 0 (0: off), got {self.mixup}")
        if self.precision not in PRECISIONS:
            raise EdgemapError(f"distill: precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.epochs < 1:
            raise EdgemapError(f"distill: epochs must be >= 1, got {self.epochs}")
        if not 0 <= self.alpha <= 1:
            raise EdgemapError(f"distill: alpha must lie in [0, 1], got {self.alpha}")
        if self.temperature <= 0 or self.lr <= 0:
            raise EdgemapError("distill: temperature and lr must be positive")
        if self.jpeg_augment is not None and not 0 <= self.jpeg_augment <= 1:
            raise EdgemapError(f"distill: jpeg_augment must lie in [0, 1], got {self.jpeg_augment}")


def build_student(spec: str, teacher_info: CheckpointInfo) -> tuple[nn.Module, CheckpointInfo]:
    """A student from a zoo name (fresh) or a checkpoint path (its weights, e.g. a pruned model)."""
    if spec.endswith(".safetensors") or Path(spec).is_file():
        model, info = load_checkpoint(spec)
    else:
        model = zoo.build(spec, num_classes=teacher_info.num_classes)
        info = CheckpointInfo(spec, teacher_info.num_classes, teacher_info.input_shape, teacher_info.normalization,
                              teacher_info.class_names)
    if info.num_classes != teacher_info.num_classes:
        raise EdgemapError(f"distill: student predicts {info.num_classes} classes, teacher {teacher_info.num_classes}")
    return model, info


def distill_model(teacher: nn.Module, student: nn.Module, cfg: Distill, ctx: PassContext, info: CheckpointInfo,
                  tag: str = "distill", jpeg_augment: float = 0.0) -> list[dict]:
    """Train `student` in place from `teacher` on ctx.train_set; returns the per-epoch history."""
    if ctx.train_set is None:
        raise EdgemapError("distill: needs training data")
    return finetune(student, ctx.train_set, cfg.epochs, cfg.lr, info.normalization, cfg.batch_size, teacher=teacher,
                    temperature=cfg.temperature, alpha=cfg.alpha, run_dir=ctx.sub_run_dir(tag), seed=cfg.seed,
                    progress=ctx.progress, jpeg_augment=jpeg_augment, precision=cfg.precision, mixup=cfg.mixup)


@pass_function(Distill)
def distill_checkpoint(cfg: Distill, source: str | Path, out: str | Path, ctx: PassContext) -> CompressionReport:
    """Distil the teacher checkpoint `source` into the student, save it at `out`; report with/without distillation."""
    teacher, t_info = load_checkpoint(source)
    student, s_info = build_student(cfg.student, t_info)
    report = CompressionReport("distill", config_to_dict(cfg))
    jpeg = cfg.jpeg_augment if cfg.jpeg_augment is not None else trained_jpeg_share(t_info)
    with timed(report):
        soft_teacher = distillation_teacher(teacher, cfg.teacher_mirror)
        record_soft_targets(report, soft_teacher, ctx.train_set, t_info.normalization, cfg.temperature)
        baseline = copy.deepcopy(student)
        history = distill_model(soft_teacher, student, cfg, ctx, s_info, jpeg_augment=jpeg)
        report.accuracy = {"teacher": torch_accuracy(soft_teacher, ctx.eval_set, t_info.normalization),
                           "after": torch_accuracy(student, ctx.eval_set, s_info.normalization)}
        if cfg.compare_baseline:
            base_hist = finetune(baseline, ctx.train_set, cfg.epochs, cfg.lr, s_info.normalization, cfg.batch_size,  # type: ignore[arg-type]
                                 run_dir=ctx.sub_run_dir("distill_baseline"), seed=cfg.seed, progress=ctx.progress,
                                 jpeg_augment=jpeg, precision=cfg.precision, mixup=cfg.mixup)
            report.accuracy["before"] = torch_accuracy(baseline, ctx.eval_set, s_info.normalization)
            report.extra["baseline_history"] = base_hist
            report.notes.append("accuracy before: the same student trained without distillation, same budget")
        report.extra["history"] = history
        report.extra["jpeg_augment"] = jpeg
        info = CheckpointInfo(s_info.architecture, s_info.num_classes, s_info.input_shape, s_info.normalization,
                              s_info.class_names, metrics={"test": report.accuracy.get("after")},
                              training={"compression": [report.config], "teacher": str(source), "history": history},
                              layers=layer_shapes(student) if s_info.layers else {})
        save_checkpoint(student, info, out)
        report.output = str(out)
    report.params = (count_parameters(teacher), count_parameters(student))
    report.macs = (count_macs(teacher, t_info.input_shape), count_macs(student, s_info.input_shape))
    report.file_bytes = (file_size(source), file_size(out))
    if ctx.latency_runs:
        lat = torch_latency({"before": teacher, "after": student}, t_info.input_shape, ctx.latency_runs)
        report.latency = {**latency_pair(lat["before"], lat["after"]), "runtime": "torch eager, batch 1 (teacher -> student)"}
    return report
