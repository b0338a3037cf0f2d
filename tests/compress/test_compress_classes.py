"""`compress` commands on a checkpoint read labelled data in the model's class order: --classes/--labels, else the
checkpoint's record; an image folder (sorted sub-folders) in another order is relabelled by name, or refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from edgemap.commands.compress_data import checkpoint_context
from edgemap.data.dataset import CIFAR10_CLASSES, ImageSet
from edgemap.errors import EdgemapError
from edgemap.models import zoo
from edgemap.models.checkpoint import CheckpointInfo, save_checkpoint

MODEL_ORDER = tuple(np.array(CIFAR10_CLASSES)[[3, 8, 0, 5, 1, 9, 2, 7, 4, 6]])  # not alphabetical


def write_folder(data: ImageSet, names: tuple[str, ...], root: Path) -> Path:
    """One sub-folder per class, named names[label]; file names keep the image's index."""
    for i, (img, label) in enumerate(zip(data.images, data.labels)):
        folder = root / names[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:04d}.png")
    return root


@pytest.fixture
def folder(sample: ImageSet, tmp_path: Path) -> tuple[Path, ImageSet]:
    """200 sample images whose labels are MODEL_ORDER indices, in class folders (sorted: another order)."""
    data = sample.subset(slice(0, 200))
    return write_folder(data, MODEL_ORDER, tmp_path / "folder"), data


def by_image(d: ImageSet) -> dict[bytes, int]:
    return {img.tobytes(): int(label) for img, label in zip(d.images, d.labels)}


def test_a_folder_in_another_order_is_relabelled_to_the_model_order(folder, tiny_ckpt: Path) -> None:  # noqa: ANN001
    root, data = folder
    ctx = checkpoint_context(tiny_ckpt, root, root, 0, 0, None, False, MODEL_ORDER)
    assert ctx.eval_set.class_names == MODEL_ORDER and by_image(ctx.eval_set) == by_image(data)
    assert by_image(ctx.train_set) == by_image(data)
    # the record's order (CIFAR-10's, alphabetical) labels the same folder otherwise: the folder is read by name
    plain = checkpoint_context(tiny_ckpt, None, root, 0, 0, None, False)
    assert plain.eval_set.class_names == CIFAR10_CLASSES and by_image(plain.eval_set) != by_image(data)


def test_the_checkpoint_record_gives_the_order_when_no_option_does(folder, tmp_path: Path) -> None:  # noqa: ANN001
    root, data = folder
    ckpt = save_checkpoint(zoo.build("tiny"), CheckpointInfo("tiny", class_names=MODEL_ORDER), tmp_path / "own.safetensors")
    assert by_image(checkpoint_context(ckpt, None, root, 0, 0, None, False).eval_set) == by_image(data)


def test_other_class_names_or_sizes_are_refused(folder, tiny_ckpt: Path) -> None:  # noqa: ANN001
    root, _ = folder
    with pytest.raises(EdgemapError, match="'cat'.*does not know"):
        checkpoint_context(tiny_ckpt, None, root, 0, 0, None, False, tuple(n.replace("cat", "kitten") for n in MODEL_ORDER))
    with pytest.raises(EdgemapError, match="3 class names given, but tiny.safetensors predicts 10"):
        checkpoint_context(tiny_ckpt, None, root, 0, 0, None, False, ("a", "b", "c"))


def edgemap(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "EDGEMAP_CIFAR10"}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([sys.executable, "-m", "edgemap.cli", *args], capture_output=True, text=True, env=env, timeout=300)


def test_sparsify_scores_a_folder_in_another_order_with_classes(folder, sample: ImageSet, tmp_path: Path) -> None:  # noqa: ANN001
    from edgemap.data.transforms import Normalization
    from edgemap.train.evaluate import evaluate
    from edgemap.train.loop import TrainConfig, train

    root, data = folder
    torch.manual_seed(0)
    model = zoo.build("tiny")
    train(model, sample.subset(slice(400, 1000)), TrainConfig(epochs=1, batch_size=64, lr=0.2), Normalization(), progress=False)
    ckpt = save_checkpoint(model, CheckpointInfo("tiny"), tmp_path / "trained.safetensors")  # record: CIFAR-10's order
    truth = evaluate(model.eval(), data, Normalization()).top1
    report, out = tmp_path / "r.json", tmp_path / "sparse.safetensors"
    r = edgemap("compress", "sparsify", str(ckpt), "--out", str(out), "--sparsity", "0.1", "--eval-data", str(root),
                "--latency-runs", "0", "--report", str(report), "--classes", ",".join(MODEL_ORDER))
    assert r.returncode == 0, r.stderr
    assert json.loads(report.read_text())["accuracy"]["before"]["top1"] == pytest.approx(truth)
