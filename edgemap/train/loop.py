"""Supervised training: SGD + Nesterov, one-cycle (or cosine) schedule, label smoothing, resumable.

A run directory keeps the last epoch's weights, optimizer momentum and history, so a killed
run continues from the last finished epoch with the same result it would have had.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from edgemap.core.atomic import atomic_path, write_json
from edgemap.data.dataset import ImageSet
from edgemap.data.transforms import Normalization, to_nchw_float
from edgemap.errors import EdgemapError
from edgemap.train.augment import random_crop_flip
from edgemap.train.evaluate import evaluate

# ---- hyper-parameters (defaults; every one can be set from the command line) ----------------
#   epochs          30      passes over the training set
#   batch_size      512     images per step
#   lr              0.4     peak learning rate of the one-cycle schedule (linear up, linear down)
#   warmup          0.2     fraction of steps spent rising to the peak
#   momentum        0.9     Nesterov momentum
#   weight_decay    5e-4    L2 on the weights
#   norm_bias_decay True    also decay BatchNorm scales/shifts and biases (the 1-D parameters); False exempts them,
#                           as timm does by default (they hold few weights, and shrinking them regularises little)
#   label_smoothing 0.1
#   pad             4       random-crop padding (reflect)
#   jpeg_augment    0.0     share of images replaced by a JPEG-compressed copy (quality 75, 4:2:0): the
#                           CIFAR-10 test copy here is 90 % JPEG-decoded, so robustness to it is trained
#   mixup           0.0     Beta(a, a) parameter of mixup (Zhang et al., 2018): each batch is blended with a
#                           shuffled copy of itself and the targets likewise; 0 = off. With a distillation loss
#                           the teacher sees the same blended images ("function matching", Beyer et al., 2022)
#   precision       fp32    "bf16": forward passes (student and teacher) under CPU autocast to bfloat16, fp32
#                           master weights and loss; faster on some CPUs with AVX-512 BF16 (AMD EPYC here: x1.3
#                           per epoch), not on others (benchmarks/train_precision.py measures it)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (see the table above)."""

    epochs: int = 30
    batch_size: int = 512
    lr: float = 0.4
    schedule: str = "onecycle"
    warmup: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    norm_bias_decay: bool = True
    label_smoothing: float = 0.1
    pad: int = 4
    augment: bool = True
    jpeg_augment: float = 0.0
    mixup: float = 0.0
    seed: int = 0
    threads: int = 0  # 0: leave torch's default
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise EdgemapError("epochs and batch size must be at least 1")
        if self.schedule not in ("onecycle", "cosine"):
            raise EdgemapError(f"unknown schedule {self.schedule!r}; use onecycle or cosine")
        if not 0 <= self.jpeg_augment <= 1:
            raise EdgemapError(f"jpeg augmentation share must lie in [0, 1], got {self.jpeg_augment}")
        if self.mixup < 0:
            raise EdgemapError(f"mixup must be >= 0 (0: off), got {self.mixup}")
        if not 0 <= self.label_smoothing < 1 or not 0 <= self.warmup < 1:
            raise EdgemapError("label smoothing and warmup must lie in [0, 1)")
        if self.precision not in PRECISIONS:
            raise EdgemapError(f"unknown training precision {self.precision!r}; use {' or '.join(PRECISIONS)}")


PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str) -> None:
    """bf16 autocast on a CPU without native bfloat16 kernels is emulated and slower than fp32: refuse it."""
    if precision == "bf16" and not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        raise EdgemapError("bf16 training needs a CPU with AVX-512 BF16 or AMX (this one has neither); use precision fp32")


def lr_at(cfg: TrainConfig, step: int, total: int) -> float:
    """Learning rate at a step: one-cycle (linear warm-up, linear decay to 0) or cosine with warm-up."""
    rise = max(1, int(cfg.warmup * total))
    if step < rise:
        return cfg.lr * (step + 1) / rise
    frac = (step - rise) / max(1, total - rise)
    if cfg.schedule == "onecycle":
        return cfg.lr * (1.0 - frac)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * frac))


# A loss function gets (logits, labels, input batch) so distillation can run its teacher on the batch. The labels
# are class indices, or an N x classes matrix of target probabilities when mixup blends the batch.
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """The optimizer's parameter groups: one, or with norm_bias_decay=False the 1-D parameters (BatchNorm scales and
    shifts, biases) apart with no weight decay."""
    params = list(model.parameters())
    if cfg.norm_bias_decay:
        return [{"params": params}]
    return [{"params": [p for p in params if p.ndim > 1]},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]


def _opt_params(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in opt.param_groups for p in group["params"]]


def _state_paths(run_dir: Path) -> tuple[Path, Path, Path]:
    return run_dir / "last.safetensors", run_dir / "last_optim.safetensors", run_dir / "state.json"


def _save_state(run_dir: Path, model: nn.Module, opt: torch.optim.Optimizer, state: dict) -> None:
    w, o, s = _state_paths(run_dir)
    with atomic_path(w) as tmp:
        save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, str(tmp))
    bufs = {f"m{i}": opt.state[p]["momentum_buffer"].contiguous()
            for i, p in enumerate(_opt_params(opt)) if opt.state[p].get("momentum_buffer") is not None}
    with atomic_path(o) as tmp:
        save_file(bufs, str(tmp))
    write_json(s, state)


def _load_state(run_dir: Path, model: nn.Module, opt: torch.optim.Optimizer) -> dict | None:
    w, o, s = _state_paths(run_dir)
    if not s.is_file():
        return None
    model.load_state_dict(load_file(str(w)))
    bufs = load_file(str(o))
    for i, p in enumerate(_opt_params(opt)):
        if f"m{i}" in bufs:
            opt.state[p]["momentum_buffer"] = bufs[f"m{i}"]
    return json.loads(s.read_text())


def _jpeg_copy(data: ImageSet, norm: Normalization, quality: int = 75) -> torch.Tensor:
    """The training images after a JPEG round trip (pillow, 4:2:0 chroma), normalised like the originals."""
    import io

    from PIL import Image

    out = np.empty_like(data.images)
    for i, img in enumerate(data.images):
        buf = io.BytesIO()
        Image.fromarray(img.squeeze(-1) if img.shape[2] == 1 else img).save(buf, format="JPEG", quality=quality, subsampling=2)
        dec = np.asarray(Image.open(buf))
        out[i] = dec[..., None] if dec.ndim == 2 else dec
    return torch.from_numpy(to_nchw_float(out, norm)).contiguous(memory_format=torch.channels_last)


def _same_run(config: dict) -> dict:
    """The settings that decide the result: a run may resume with another thread count.
    Runs saved before `precision`, `mixup` and `norm_bias_decay` existed were fp32, without mixup, decaying all."""
    return {"precision": "fp32", "mixup": 0.0, "norm_bias_decay": True,
            **{k: v for k, v in config.items() if k != "threads"}}


@dataclass
class _Epoch:
    """What one epoch needs: the data (with its JPEG copy), the optimizer, the loss and the schedule position."""

    x_all: torch.Tensor
    y_all: torch.Tensor
    x_jpeg: torch.Tensor | None
    opt: torch.optim.Optimizer
    loss_fn: LossFn
    steps: int
    total: int
    num_classes: int


def _batch(cfg: TrainConfig, ep: _Epoch, idx: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One augmented batch: JPEG copies swapped in, random crop + flip, then mixup (targets become probabilities)."""
    x, y = ep.x_all[idx], ep.y_all[idx]
    if ep.x_jpeg is not None:
        swap = torch.rand(len(idx), generator=gen) < cfg.jpeg_augment
        x[swap] = ep.x_jpeg[idx[swap]]
    if cfg.augment:
        x = random_crop_flip(x, cfg.pad, gen).contiguous(memory_format=torch.channels_last)
    if cfg.mixup > 0:
        x, y = mixup(x, y, cfg.mixup, ep.num_classes, gen)
    return x, y


def mixup(x: torch.Tensor, y: torch.Tensor, a: float, num_classes: int,
          gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend the batch with a shuffled copy of itself, weight lam ~ Beta(a, a); targets become class probabilities."""
    lam = float(np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=gen))).beta(a, a))
    perm = torch.randperm(len(y), generator=gen)
    onehot = F.one_hot(y.long(), num_classes).float()
    return lam * x + (1 - lam) * x[perm], lam * onehot + (1 - lam) * onehot[perm]


def _run_epoch(model: nn.Module, cfg: TrainConfig, ep: _Epoch, epoch: int, bar) -> dict:  # noqa: ANN001 - EpochProgress
    """Train one epoch; returns its record (loss, train accuracy, images/s, wall time)."""
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)  # per-epoch seed: resume reproduces the run
    order = torch.randperm(len(ep.y_all), generator=gen)
    model.train()
    t0, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
    for i in range(ep.steps):
        x, y = _batch(cfg, ep, order[i * cfg.batch_size:(i + 1) * cfg.batch_size], gen)
        for g in ep.opt.param_groups:
            g["lr"] = lr_at(cfg, epoch * ep.steps + i, ep.total)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            logits = model(x)
            loss = ep.loss_fn(logits.float(), y, x)  # the loss itself in fp32
        ep.opt.zero_grad(set_to_none=True)
        loss.backward()
        ep.opt.step()
        seen += len(y)
        loss_sum += float(loss.detach()) * len(y)
        correct += int((logits.argmax(1) == (y.argmax(1) if y.ndim == 2 else y)).sum())  # mixup: the larger share
        bar.step(loss_sum / seen, 100 * correct / seen, seen / (time.perf_counter() - t0))
    wall = time.perf_counter() - t0
    return {"epoch": epoch + 1, "loss": round(loss_sum / seen, 4), "train_top1": round(100 * correct / seen, 2),
            "images_per_s": round(seen / wall, 1), "wall_s": round(wall, 1)}


def _num_classes(model: nn.Module, x: torch.Tensor) -> int:
    """Classes the model outputs (the width of mixup's target matrix), from one image in eval mode."""
    model.eval()
    with torch.no_grad():
        return int(model(x[:1]).shape[1])


def train(
    model: nn.Module,
    train_set: ImageSet,
    cfg: TrainConfig,
    norm: Normalization,
    val_set: ImageSet | None = None,
    run_dir: str | Path | None = None,
    loss_fn: LossFn | None = None,
    progress: bool = True,
) -> dict:
    """Train `model` in place and return the history (per-epoch loss, accuracy, images/s, wall time)."""
    from edgemap.train.progress import EpochProgress

    check_precision(cfg.precision)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(param_groups(model, cfg), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0,
                          weight_decay=cfg.weight_decay)
    run_path = Path(run_dir) if run_dir else None
    state = (_load_state(run_path, model, opt) if run_path else None) or {"epoch": 0, "history": [], "config": asdict(cfg)}
    if _same_run(state["config"]) != _same_run(asdict(cfg)):
        raise EdgemapError(f"{run_path}: holds a run with different settings; use another --run-dir or the same settings")
    steps = math.ceil(len(train_set) / cfg.batch_size)
    x_all = torch.from_numpy(to_nchw_float(train_set.images, norm)).contiguous(memory_format=torch.channels_last)
    ep = _Epoch(x_all, torch.from_numpy(train_set.labels), _jpeg_copy(train_set, norm) if cfg.jpeg_augment > 0 else None, opt,
                loss_fn or (lambda logits, y, _x: F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)),
                steps, cfg.epochs * steps, _num_classes(model, x_all) if cfg.mixup > 0 else 0)
    bar = EpochProgress(cfg.epochs, steps, enabled=progress, start_epoch=state["epoch"])
    for epoch in range(state["epoch"], cfg.epochs):
        record = _run_epoch(model, cfg, ep, epoch, bar)
        if val_set is not None:
            record["val_top1"] = round(evaluate(model, val_set, norm).top1, 2)
        state["history"].append(record)
        state["epoch"] = epoch + 1
        if run_path:
            _save_state(run_path, model, opt, state)
        bar.end_epoch(record)
    bar.close()
    model.eval()
    return state
