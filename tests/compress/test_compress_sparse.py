"""Magnitude pruning: the requested sparsity, a really smaller file, exact reload, honest latency note."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from edgemap.compress.sparse import PruneMagnitude, prune_magnitude_checkpoint, sparsify, make_permanent, sparsity_of
from edgemap.compress.sparse_format import decode, encode
from edgemap.errors import EdgemapError
from edgemap.models import zoo
from edgemap.models.checkpoint import CheckpointInfo, load_checkpoint, save_checkpoint


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_sparsity_is_what_was_asked(scope: str) -> None:
    model = make_permanent(sparsify(zoo.build("resnet9s"), PruneMagnitude(sparsity=0.6, scope=scope)))
    s = sparsity_of(model)
    assert s["overall"] == pytest.approx(0.6, abs=0.01)
    if scope == "layer":
        assert all(v == pytest.approx(0.6, abs=0.02) for v in s["per_layer"].values())


def test_layer_override_and_unknown_layer() -> None:
    model = make_permanent(sparsify(zoo.build("tiny"), PruneMagnitude(sparsity=0.3, scope="layer",
                                                                      layer_sparsity={"classifier": 0.9})))
    assert sparsity_of(model)["per_layer"]["classifier"] == pytest.approx(0.9, abs=0.01)
    with pytest.raises(EdgemapError, match="no conv/linear layer named nope"):
        sparsify(zoo.build("tiny"), PruneMagnitude(layer_sparsity={"nope": 0.5}))


def test_bitpacked_encoding_is_exact_and_smaller(tmp_path: Path) -> None:
    model = make_permanent(sparsify(zoo.build("resnet9s"), PruneMagnitude(sparsity=0.7)))
    state = model.state_dict()
    tensors, meta = encode(state)
    back = decode(tensors, meta)
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)
    dense = save_checkpoint(model, CheckpointInfo("resnet9s"), tmp_path / "dense.safetensors")
    sparse = save_checkpoint(model, CheckpointInfo("resnet9s"), tmp_path / "sparse.safetensors", sparse=True)
    assert sparse.stat().st_size < 0.45 * dense.stat().st_size
    reloaded, _ = load_checkpoint(sparse)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(reloaded(x), model.eval()(x))


def test_pass_reports_size_and_says_there_is_no_speedup(tiny_ckpt: Path, ctx, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "sparse.safetensors"
    report = prune_magnitude_checkpoint(PruneMagnitude(sparsity=0.5, finetune_epochs=1), tiny_ckpt, out, ctx)
    assert report.params[1] < 0.6 * report.params[0]  # non-zero parameters
    assert report.macs[0] == report.macs[1]
    assert "not faster" in report.notes[0] and "speedup" in report.latency
    model, _ = load_checkpoint(out)
    assert sparsity_of(model)["overall"] == pytest.approx(0.5, abs=0.01)  # fine-tuning kept the zeros
