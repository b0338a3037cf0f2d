import pytest
import torch
from safetensors.torch import save_file

from edgemap.models import zoo
from edgemap.models.architectures import WriteupCNN
from edgemap.models.checkpoint import CheckpointInfo, load_checkpoint, save_checkpoint
from edgemap.models.stats import count_macs, count_parameters
from edgemap.errors import EdgemapError


@pytest.mark.parametrize("name", zoo.names())
def test_every_registered_model_runs_and_counts(name):
    model = zoo.build(name, num_classes=7).eval()
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 7)
    assert count_parameters(model) > 0 and count_macs(model) > 0


@pytest.mark.parametrize("name", zoo.names())
def test_checkpoint_roundtrip(name, tmp_path):
    model = zoo.build(name).eval()
    x = torch.randn(3, 3, 32, 32)
    path = save_checkpoint(model, CheckpointInfo(architecture=name, metrics={"test": {"top1": 1.0}}), tmp_path / "m.safetensors")
    loaded, info = load_checkpoint(path)
    assert info.architecture == name and info.metrics["test"]["top1"] == 1.0
    assert torch.allclose(loaded(x), model(x))
    assert b"pickle" not in path.read_bytes()[:100]


def test_writeup_cnn_is_the_write_up_plus_two_poolings():
    m = WriteupCNN()
    convs = [l for l in m.modules() if isinstance(l, torch.nn.Conv2d)]
    pools = [l for l in m.modules() if isinstance(l, torch.nn.MaxPool2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 32), (32, 64)]
    assert len(pools) == 2 and m.classifier.in_features == 64 * 8 * 8
    assert "poolings" in WriteupCNN.__doc__


def test_macs_of_a_known_layer():
    layer = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(8 * 32 * 32, 10))
    assert count_macs(layer) == 32 * 32 * 8 * 27 + 8 * 32 * 32 * 10


def test_unknown_model_lists_known():
    with pytest.raises(EdgemapError, match="unknown model 'resnet1000'.*resnet9s"):
        zoo.build("resnet1000")


def test_weights_that_do_not_match_the_architecture(tmp_path):
    path = save_checkpoint(zoo.build("tiny"), CheckpointInfo(architecture="tiny"), tmp_path / "m.safetensors")
    save_file({"classifier.weight": torch.zeros(3, 3)}, str(path))
    with pytest.raises(EdgemapError, match="do not match architecture 'tiny'"):
        load_checkpoint(path)


def test_missing_sidecar_and_corrupt_weights(tmp_path):
    path = save_checkpoint(zoo.build("tiny"), CheckpointInfo(architecture="tiny"), tmp_path / "m.safetensors")
    path.write_bytes(b"garbage")
    with pytest.raises(EdgemapError, match="not a readable safetensors"):
        load_checkpoint(path)
    path.with_suffix(".json").unlink()
    with pytest.raises(EdgemapError, match="sidecar not found"):
        load_checkpoint(path)
