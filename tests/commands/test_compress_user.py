"""`edgemap compress prune` on a user's ONNX model (no BatchNorm, grayscale, its own class order): the recipe's
prune_user_model pass, with accuracy and latency before -> after; checkpoint-only options are refused by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

CLASSES = "ring,bar,dot"  # the model's order; the folders sort as bar, dot, ring


def _edgemap(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EDGEMAP_STORE": "off"}
    return subprocess.run([sys.executable, "-m", "edgemap.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.fixture(scope="module")
def user_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A BN-free 1x12x12 CNN exported to ONNX, and an image folder of its three classes."""
    from PIL import Image

    from edgemap.models.onnx_export import export_onnx

    root = tmp_path_factory.mktemp("user")
    rng = np.random.default_rng(0)
    for name in CLASSES.split(","):
        (root / "imgs" / name).mkdir(parents=True)
        for i in range(20):
            Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8), "L").save(root / "imgs" / name / f"{i}.png")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3)).eval()
    return export_onnx(model, root / "user.onnx", (1, 12, 12)), root / "imgs"


def test_prune_a_user_onnx_model_fine_tunes_on_the_budget_and_reports_before_after(user_model, tmp_path: Path) -> None:
    import onnxruntime as ort

    onnx_path, folder = user_model
    out, report = tmp_path / "pruned.onnx", tmp_path / "r.json"
    r = _edgemap("compress", "prune", str(onnx_path), "--out", str(out), "--ratio", "0.5", "--data", str(folder),
                 "--eval-data", str(folder), "--preprocess", "unit,channels=gray", "--classes", CLASSES,
                 "--finetune-steps", "6", "--probe-steps", "3", "--latency-runs", "3", "--report", str(report),
                 "--val-data", str(folder))
    assert r.returncode == 0, r.stderr[-2000:]
    saved = json.loads(report.read_text())
    assert saved["technique"] == "prune_user_model" and saved["config"]["distill"] is True  # distils by default
    assert saved["macs"][1] < 0.6 * saved["macs"][0] and saved["params"][1] < saved["params"][0]
    assert saved["accuracy"]["before"]["n"] == saved["accuracy"]["after"]["n"] == 60
    assert saved["latency"]["after"]["p50_ms"] > 0 and saved["extra"]["finetune"]["budget_used"]
    assert saved["extra"]["finetune"]["judged_on"].startswith("60 validation images")  # --val-data, in the model's order
    assert "fine-tuning used" in r.stdout and "judged on 60 validation images" in r.stdout and "top-1" in r.stdout
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.run(None, {session.get_inputs()[0].name: np.zeros((2, 1, 12, 12), np.float32)})[0].shape == (2, 3)


@pytest.mark.parametrize("extra, message", [
    (["--data", "{folder}", "--global"], "--global: only for edgemap checkpoints"),
    (["--data", "{folder}", "--keep", "stem", "--mixup", "0.2"], "--keep, --mixup: only for edgemap checkpoints"),
    (["--data", "{folder}", "--out", "{tmp}/p.safetensors"], "a pruned user model is written as ONNX; give --out NAME.onnx"),
    ([], "fine-tuning after pruning needs training data: give --data"),
    (["--data", "{folder}", "--ratio", "1"], "ratio must lie in (0, 1)"),
])
def test_prune_a_user_model_refuses_bad_input_in_one_line(user_model, tmp_path: Path, extra: list[str],
                                                          message: str, run_cli) -> None:  # noqa: ANN001
    onnx_path, folder = user_model
    status, _, err = run_cli("compress", "prune", str(onnx_path), "--out", str(tmp_path / "p.onnx"), "--preprocess",
                             "unit,channels=gray", *[a.format(tmp=tmp_path, folder=folder) for a in extra])
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and message in lines[0], err
    assert list(tmp_path.iterdir()) == []


def test_a_pt2_saved_at_batch_1_is_refused_in_one_line_before_any_fine_tuning(user_model, tmp_path: Path) -> None:
    onnx_path, folder = user_model
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 10 * 10, 3)).eval()
    torch.export.save(torch.export.export(model, (torch.zeros(1, 1, 12, 12),)), tmp_path / "b1.pt2")
    r = _edgemap("compress", "prune", str(tmp_path / "b1.pt2"), "--out", str(tmp_path / "p.onnx"), "--data", str(folder),
                 "--preprocess", "unit,channels=gray", "--classes", CLASSES)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "exported at batch 1 only; re-export it with a dynamic batch" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b1.pt2"]
