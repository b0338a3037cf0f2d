"""Fixtures for the compression tests: the tiny zoo model as a checkpoint and ONNX file, tiny data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from edgemap.compress.context import PassContext
from edgemap.data.dataset import ImageSet
from edgemap.data.sample import load_sample
from edgemap.models import zoo
from edgemap.models.checkpoint import CheckpointInfo, save_checkpoint


@pytest.fixture(scope="session")
def sample() -> ImageSet:
    """The shipped 1,000-image sample."""
    return load_sample()


@pytest.fixture
def ctx(sample: ImageSet, tmp_path: Path) -> PassContext:
    """256 training images, 200 evaluation images, short latency runs."""
    torch.set_num_threads(1)
    return PassContext(train_set=sample.subset(slice(0, 256)), eval_set=sample.subset(slice(800, 1000)),
                       run_dir=tmp_path / "state", latency_runs=10)


@pytest.fixture
def tiny_ckpt(tmp_path: Path) -> Path:
    """A freshly initialised `tiny` model saved as a checkpoint."""
    torch.manual_seed(0)
    return save_checkpoint(zoo.build("tiny"), CheckpointInfo("tiny"), tmp_path / "tiny.safetensors")


@pytest.fixture
def tiny_onnx(tiny_ckpt: Path, tmp_path: Path) -> Path:
    """The tiny checkpoint exported to ONNX."""
    from edgemap.convert.onnx_export import export_onnx
    from edgemap.models.checkpoint import load_checkpoint

    model, _ = load_checkpoint(tiny_ckpt)
    return export_onnx(model, tmp_path / "tiny.onnx")


@pytest.fixture(scope="session")
def trained_tiny_onnx(sample: ImageSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`tiny` trained for a few seconds on the sample (so that quantization errors change predictions), as ONNX."""
    from edgemap.convert.onnx_export import export_onnx
    from edgemap.data.transforms import Normalization
    from edgemap.train.loop import TrainConfig, train

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = zoo.build("tiny")
    train(model, sample.subset(slice(0, 800)), TrainConfig(epochs=4, batch_size=64, lr=0.2), Normalization(), progress=False)
    return export_onnx(model, tmp_path_factory.mktemp("trained") / "tiny_trained.onnx")
