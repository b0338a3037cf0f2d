"""`edgemap train`: train a zoo model on CIFAR-10 and write a checkpoint with its evidence."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from rich.console import Console

from edgemap.core.evidence import machine_evidence
from edgemap.data.cifar10 import load_cifar10
from edgemap.data.transforms import Normalization
from edgemap.models import zoo
from edgemap.models.checkpoint import CheckpointInfo, save_checkpoint
from edgemap.train.evaluate import evaluate
from edgemap.train.loop import TrainConfig, train


def run_training(arch: str, cfg: TrainConfig, data: Path | None, out: Path, run_dir: Path, limit: int, command: str,
                 init: Path | None = None, class_names: tuple[str, ...] | None = None) -> dict:
    """Train (from scratch, or from `init`'s weights), evaluate on the test split (all and exact), save the
    checkpoint; returns the sidecar dict. A fine-tuned checkpoint keeps its parent's training record.
    `class_names` (--classes/--labels) is the model's output order; the data is relabelled to it by name."""
    from edgemap.data.classes import align_to_model

    console = Console(stderr=True)
    model, parent = _initial_model(arch, init)
    train_set = load_cifar10("train", data)
    test_set = load_cifar10("test", data)
    if class_names:
        train_set, test_set = (align_to_model(d, class_names, "--classes") for d in (train_set, test_set))
    if limit:
        train_set = train_set.subset(slice(0, limit))
    norm = Normalization()
    run_dir.mkdir(parents=True, exist_ok=True)
    console.print(f"training {arch} on {len(train_set):,} images from {train_set.source} for {cfg.epochs} epochs")
    t0 = time.perf_counter()
    state = train(model, train_set, cfg, norm, val_set=test_set.exact(), run_dir=run_dir)
    wall = time.perf_counter() - t0
    result = evaluate(model, test_set, norm)
    history = state["history"]
    info = CheckpointInfo(
        architecture=arch, normalization=norm, class_names=train_set.class_names,
        metrics={"test": result.to_dict()},
        training={"command": command, "config": asdict(cfg), "train_images": len(train_set),
                  "train_wall_s_total": round(sum(h["wall_s"] for h in history), 1),
                  "wall_s_this_invocation": round(wall, 1),
                  "images_per_s_median": sorted(h["images_per_s"] for h in history)[len(history) // 2],
                  "history": history, "evidence": machine_evidence(), "init_from": parent},
    )
    save_checkpoint(model, info, out)
    exact = f"{result.top1_exact:.2f}%" if result.top1_exact is not None else "n/a"
    Console().print(f"{arch}: top-1 {result.top1:.2f}% on {result.n:,} test images, {exact} on the {result.n_exact:,} exact ones"
                    f" -> {out}")
    from edgemap.results.builders import train_run
    from edgemap.results.record import record_run

    record_run(train_run(info.to_dict(), out))
    return info.to_dict()


def _initial_model(arch: str, init: Path | None):  # noqa: ANN202 - (nn.Module, dict | None)
    """A fresh zoo model, or the weights of `init` (which must be the same architecture) and its record."""
    if init is None:
        return zoo.build(arch), None
    from edgemap.errors import EdgemapError
    from edgemap.models.checkpoint import load_checkpoint

    model, info = load_checkpoint(init)
    if info.architecture != arch:
        raise EdgemapError(f"{init}: is a {info.architecture}, not a {arch}; pass --model {info.architecture}")
    return model, {"checkpoint": str(init), "metrics": info.metrics, "training": info.training}
