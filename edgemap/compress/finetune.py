"""Fine-tuning and knowledge distillation on top of the training loop (edgemap.train.loop.train)."""

from __future__ import annotations

from pathlib import Path

import math

import torch
import torch.nn.functional as F
from torch import nn

from edgemap.compress.report import CompressionReport
from edgemap.data.dataset import ImageSet
from edgemap.data.transforms import Normalization, to_nchw_float
from edgemap.models.checkpoint import CheckpointInfo
from edgemap.train.loop import LossFn, TrainConfig, train


def hinton_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                temperature: float, alpha: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy (Hinton et al., 2015).

    The T^2 factor keeps the soft-target gradients at the same scale whatever the temperature.
    """
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=1), F.log_softmax(teacher_logits / temperature, dim=1),
                    reduction="batchmean", log_target=True) * temperature ** 2
    hard = F.cross_entropy(student_logits, labels, label_smoothing=label_smoothing)
    return alpha * soft + (1 - alpha) * hard


def distillation_loss(teacher: nn.Module, temperature: float, alpha: float, label_smoothing: float = 0.0) -> LossFn:
    """A loss for train(): runs the frozen teacher on the same (augmented) batch as the student."""
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)

    def loss(logits: torch.Tensor, labels: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            t_logits = teacher(x).float()  # under bf16 autocast the teacher runs in bf16; the loss stays fp32
        return hinton_loss(logits, t_logits, labels, temperature, alpha, label_smoothing)

    return loss


class MirrorAveraged(nn.Module):
    """A teacher whose logits are averaged over the image and its left-right mirror.

    The two-view ensemble is more accurate than the model alone (shipped resnet9s: 88.27 -> 89.11 % on the CIFAR-10
    test set, benchmarks/results/teacher_mirror.md), so it is a better distillation teacher, for one more teacher
    forward pass per batch. Only for data whose mirror image keeps its label (photos of objects, not text or digits).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.model(x) + self.model(x.flip(3)))


def distillation_teacher(model: nn.Module, mirror: bool) -> nn.Module:
    """The teacher the student learns from: the model itself, or its mirror-averaged ensemble (MirrorAveraged)."""
    return MirrorAveraged(model) if mirror else model


SOFT_TARGETS_FLAT = 0.9  # entropy share above which soft targets are close to uniform


def soft_target_stats(teacher: nn.Module, data: ImageSet, norm: Normalization, temperature: float,
                      n: int = 512) -> dict:
    """How much the teacher's soft targets say at this temperature, on the first n images (no augmentation).

    entropy_share: mean entropy over its maximum, ln(classes); near 1 the targets are almost uniform (a teacher
    trained with label smoothing is soft already, and a high temperature flattens it further).
    max_prob: mean probability of the teacher's top class. A note is returned when the targets are near uniform.
    """
    teacher.eval()
    x = torch.from_numpy(to_nchw_float(data.images[:n], norm))
    with torch.no_grad():
        probs = torch.softmax(teacher(x).float() / temperature, dim=1)
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(1).mean().item()
    stats = {"temperature": temperature, "images": len(x), "entropy_share": round(entropy / math.log(probs.shape[1]), 3),
             "max_prob": round(probs.max(1).values.mean().item(), 3)}
    if stats["entropy_share"] > SOFT_TARGETS_FLAT:
        stats["note"] = (f"the teacher's soft targets at temperature {temperature:g} are near uniform (entropy "
                         f"{stats['entropy_share']:.0%} of the maximum, top class {stats['max_prob']:.2f}); "
                         "a lower temperature passes on more of what the teacher knows")
    return stats


def record_soft_targets(report: CompressionReport, teacher: nn.Module, data: ImageSet | None, norm: Normalization,
                        temperature: float) -> None:
    """Put soft_target_stats in the report (extra["soft_targets"]), and its note among the report's notes."""
    if data is None:
        return
    stats = report.extra["soft_targets"] = soft_target_stats(teacher, data, norm, temperature)
    if "note" in stats:
        report.notes.append(stats["note"])


def finetune(model: nn.Module, train_set: ImageSet, epochs: int, lr: float, norm: Normalization,
             batch_size: int = 256, teacher: nn.Module | None = None, temperature: float = 4.0, alpha: float = 0.5,
             run_dir: str | Path | None = None, seed: int = 0, progress: bool = False,
             jpeg_augment: float = 0.0, weight_decay: float = 5e-4, precision: str = "fp32",
             mixup: float = 0.0, norm_bias_decay: bool = True) -> list[dict]:
    """Train `model` in place for a few epochs (cosine schedule, short warm-up); with a teacher, distil from it.

    jpeg_augment: share of images swapped for a JPEG round trip (see TrainConfig) - a pruned model loses
    robustness to compressed inputs first. precision: "bf16" trains under CPU autocast (see TrainConfig).
    mixup: Beta parameter of mixup, 0 = off; with a teacher it sees the blended images too (see TrainConfig).
    norm_bias_decay: False exempts BatchNorm parameters and biases from weight decay (see TrainConfig).
    Returns the per-epoch history. run_dir makes it resumable.
    """
    if epochs <= 0:
        return []
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, schedule="cosine", warmup=0.05,
                      label_smoothing=0.0 if teacher is not None else 0.1, seed=seed,
                      jpeg_augment=jpeg_augment, weight_decay=weight_decay, precision=precision, mixup=mixup,
                      norm_bias_decay=norm_bias_decay)
    loss_fn = distillation_loss(teacher, temperature, alpha) if teacher is not None else None
    if teacher is not None:
        teacher.to(memory_format=torch.channels_last)
    if run_dir is not None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
    state = train(model, train_set, cfg, norm, run_dir=run_dir, loss_fn=loss_fn, progress=progress)
    model.to(memory_format=torch.contiguous_format).eval()
    return state["history"]


def trained_jpeg_share(info: CheckpointInfo) -> float:
    """The JPEG-augmentation share of the checkpoint's last training run (0 when it does not say)."""
    config = (info.training or {}).get("config") or {}
    share = config.get("jpeg_augment", 0.0)
    return float(share) if isinstance(share, (int, float)) and 0 <= share <= 1 else 0.0
