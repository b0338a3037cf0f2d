"""`edgemap map` fine-tunes a pruned user model on a step budget by default and says what it used, per ratio."""

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import save_file

from edgemap.search.mapper import MapOptions, run_map
from edgemap.search.strategy import Constraints

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_recipe_replay import _plain  # noqa: E402


@pytest.fixture
def train_npz(tmp_path):
    rng = np.random.default_rng(1)
    labels = np.arange(300) % 10
    images = np.clip(rng.normal(labels[:, None, None, None] * 25, 10, (300, 32, 32, 3)), 0, 255).astype(np.uint8)
    np.savez(tmp_path / "train.npz", images=images, labels=labels.astype(np.uint8))
    return tmp_path / "train.npz"


def test_a_bn_free_user_model_fine_tunes_on_the_budget_and_the_map_says_how_much_it_used(train_npz, tmp_path, capsys):
    path, module = _plain(tmp_path)
    save_file(module.state_dict(), tmp_path / "plain.safetensors")
    val = tmp_path / "val.npz"  # validation images judge the fine-tuning (--val-data)
    with np.load(train_npz) as z:
        np.savez(val, images=z["images"][::3], labels=z["labels"][::3])
    opts = MapOptions(model=f"{path}:build", weights=tmp_path / "plain.safetensors", preprocess="cifar10",
                      train_data=train_npz, val_data=val, prune_ratios=(0.5,), finetune_steps=12, out_dir=tmp_path / "m",
                      trials=1,
                      backends=("onnxruntime",), precisions=("fp32",), threads=(1,), latency_runs=5, calib_samples=64,
                      progress=False, constraints=Constraints(max_accuracy_drop=3.0), timing_rounds=1)
    summary = run_map(opts)
    info = summary.finetune["0.5"]
    assert re.fullmatch(r"\d+ of 12 steps \(\d+ %\), \d+\.\d min: .+", info["budget_used"])
    assert info["optimizer"] == "adamw" and info["held_out"] == 100  # no BatchNorm: AdamW; the 100 validation images
    assert info["judged_on"].startswith("100 validation images of ") and info["decision"]["n"] == 100
    assert info["steps"] <= 12 and info["target"] is not None
    err = " ".join(capsys.readouterr().err.split())
    assert "fine-tuning on a budget of 12 steps, stopping within 1.5 points of the unpruned model" in err
    assert re.search(r"ratio 0\.5: MACs [\d.]+ M -> [\d.]+ M \(-[\d.]+ %\); fine-tuning used", err)  # MACs removed
    assert ("given up" in err) == (info["given_up"] is not None) and "judged on 100 validation images" in err
    recipe = yaml.safe_load(open(summary.recipe))
    assert recipe["data"]["val"] == str(val)  # `edgemap run` replays with the same judging images
    prune = next((p for p in recipe["passes"] if p["type"] == "prune_user_model"), None)
    if prune is not None:  # the chosen mapping may be the unpruned one
        assert prune["finetune_steps"] == 12 and prune["max_drop"] == 1.5 and prune["finetune_epochs"] is None
