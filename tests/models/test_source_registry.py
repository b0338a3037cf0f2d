"""Every registered model source, parametrised over the registry: it loads into an Artifact, and the commands that
take a model (convert, estimate, compress quantize, map through the recipe runner) take it."""

from __future__ import annotations

import textwrap

import pytest
import torch
from safetensors.torch import save_file

from edgemap.core import passes
from edgemap.core.artifact import Artifact
from edgemap.models import zoo
from edgemap.models.checkpoint import CheckpointInfo, save_checkpoint
from edgemap.models.onnx_export import export_onnx
from edgemap.models.sources.loaders import model_ref, source_artifact
from edgemap.pipeline import loaded  # noqa: F401 - registers every source

NET = textwrap.dedent('''
    from torch import nn

    def build():
        net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                            nn.Linear(8, 10))
        net.input_shape = (3, 32, 32)  # how an entry point states its input
        return net
''')


def make_source(kind: str, tmp_path) -> tuple[str, str | None]:
    """(model as a user types it, weights) for each kind of source."""
    torch.manual_seed(0)
    if kind in ("checkpoint", "shipped"):
        return str(save_checkpoint(zoo.build("tiny"), CheckpointInfo("tiny"), tmp_path / "tiny.safetensors")), None
    if kind == "onnx":
        return str(export_onnx(zoo.build("tiny"), tmp_path / "tiny.onnx")), None
    (tmp_path / "net.py").write_text(NET)
    ns: dict = {}
    exec(NET, ns)
    module = ns["build"]().eval()
    if kind == "pt2":
        torch.export.save(torch.export.export(module, (torch.randn(1, 3, 32, 32),)), tmp_path / "net.pt2")
        return str(tmp_path / "net.pt2"), None
    save_file(module.state_dict(), tmp_path / "w.safetensors")
    return f"{tmp_path / 'net.py'}:build", str(tmp_path / "w.safetensors")


KINDS = [s.kind for s in passes.sources() if s.kind != "shipped"]  # the shipped one is a checkpoint by name


def test_the_registry_knows_every_kind_of_model():
    assert {"checkpoint", "onnx", "pt2", "entry_point", "shipped"} <= {s.kind for s in passes.sources()}


@pytest.mark.parametrize("kind", KINDS)
def test_every_source_loads_into_an_artifact_and_exports_to_onnx(kind, tmp_path):
    from edgemap.pipeline.sources import onnx_of

    model, weights = make_source(kind, tmp_path)
    artifact = source_artifact(model_ref(model, weights))
    assert isinstance(artifact, Artifact) and artifact.format == passes.source_for(model_ref(model, weights)).produces
    assert len(artifact.sha256) == 64 and tuple(artifact.input_shape) == (3, 32, 32)
    onnx_path = onnx_of(model, weights, tmp_path / "export")
    assert Artifact(onnx_path, "onnx").sha256 and onnx_path.suffix == ".onnx"
    if kind == "pt2":  # saved at a fixed batch of 1: exported at that batch
        import onnx

        assert onnx.load(str(onnx_path)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1


@pytest.mark.parametrize("kind", KINDS)
def test_convert_and_estimate_take_every_source(kind, tmp_path):
    from edgemap.commands.convert import run_convert
    from edgemap.devices.catalogue import resolve
    from edgemap.devices.estimate import estimate
    from edgemap.pipeline.sources import onnx_of

    model, weights = make_source(kind, tmp_path)
    record = run_convert(model, "onnx", tmp_path / "out.onnx", "fp32", 18, False, 16, 64, None, None, None,
                         weights=weights)
    assert record["parity"]["top1_agreement"] == 1.0
    est = estimate(onnx_of(model, weights, tmp_path / "e"), resolve("rpi4"))
    assert est.to_dict()["latency_s"]["value"] > 0


def test_a_model_reference_that_names_nothing_known_is_one_line(tmp_path):
    from edgemap.errors import EdgemapError

    with pytest.raises(EdgemapError, match="unsupported model"):
        model_ref(tmp_path / "net.h5")
    with pytest.raises(EdgemapError, match="'model' must be"):
        passes.source_for({"url": "http://x"})
