"""`edgemap eval` on users' models and image folders: .onnx through the CLI, entry point + weights, errors."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from edgemap.commands.evaluate import run_user_eval

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "data"))
from test_compat import colour_data, colour_model  # noqa: E402


def edgemap(*args):
    return subprocess.run([sys.executable, "-m", "edgemap.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def folder(tmp_path):
    """An image folder of 12 PNGs, 10 x 10, classes blue/green/red (sorted: blue=0, green=1, red=2)."""
    data = colour_data(n=12, size=10, classes=("red", "green", "blue"))
    for i, (img, label) in enumerate(zip(data.images, data.labels)):
        d = tmp_path / "images" / data.class_names[label]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{i}.png")
    return tmp_path / "images"


def test_cli_evaluates_an_onnx_model_on_an_image_folder(tmp_path, folder):
    colour_model(tmp_path / "c.onnx", size=8)
    # folder classes sort as blue, green, red: feed BGR so channel index = class index
    r = edgemap("eval", str(tmp_path / "c.onnx"), "--data", str(folder), "--preprocess", "cifar10,resize=8x8,channels=bgr")
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert "c.onnx (onnx): input (3, 8, 8) NCHW, 3 classes" in out
    assert "sanity check on 12 images: top-1 100.0 % (chance 33 %)" in out and "top-1 100.00% on 12 images" in out
    r = edgemap("eval", str(tmp_path / "c.onnx"), "--data", str(folder), "--preprocess", "cifar10")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "size: the model takes 8x8 images, the images are 10x10: set resize=8x8" in r.stderr


def test_entry_point_with_weights_gets_its_shape_from_the_data_and_a_hint_when_wrong(tmp_path, folder, capsys):
    (tmp_path / "colournet.py").write_text(textwrap.dedent("""
        from torch import nn
        def build():
            return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 3, bias=False))
    """))
    weights = tmp_path / "w.safetensors"
    save_file({"2.weight": torch.eye(3).flip(0).contiguous()}, str(weights))  # RGB input -> blue, green, red order
    entry = f"{tmp_path / 'colournet.py'}:build"
    good = run_user_eval(entry, folder, "unit", weights=weights, confusion=False)
    assert good["top1"] == 100.0 and good["model"]["input_shape"] == [3, 10, 10] and good["sanity"]["hint"] is None
    bad = run_user_eval(entry, folder, "unit,channels=bgr", weights=weights, confusion=False)
    assert bad["top1"] < 50 and "near chance" in bad["sanity"]["hint"]
    assert "with channels=rgb the accuracy is 100 %" in bad["sanity"]["hint"]
    assert "hint:" in capsys.readouterr().out


def test_zoo_only_options_are_refused_for_checkpoints():
    r = edgemap("eval", "--preprocess", "cifar10")
    assert r.returncode == 2 and "--weights, --preprocess and --input-shape are for user models" in r.stderr


def test_compress_quantize_calibrates_and_evaluates_on_a_user_image_folder(tmp_path, folder):
    """A user's ONNX model (not 3x32x32) quantizes on their own images, preprocessed as given; without a
    preprocessing the command says what is missing instead of feeding CIFAR-shaped calibration data."""
    import json

    from edgemap.convert.onnx_export import export_onnx

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, padding=1),
                              torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 3))
    model = export_onnx(net.eval(), tmp_path / "m.onnx", (3, 8, 8))
    args = ["compress", "quantize", str(model), "--out", str(tmp_path / "q.onnx"), "--samples", "8", "--latency-runs", "5"]
    r = edgemap(*args, "--data", str(folder), "--eval-data", str(folder), "--preprocess", "resize=8x8,scale=1/255",
                "--report", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["extra"]["calibration"]["samples"] == 8 and report["accuracy"]["after"]["n"] == 12
    assert report["extra"]["int8"]["integer_by_type"].get("QLinearConv", 0) == 2
    r = edgemap(*args[:-4], "--out", str(tmp_path / "x.onnx"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "m.onnx takes 3x8x8 inputs: give --preprocess with --data / --eval-data" in r.stderr
    assert not (tmp_path / "x.onnx").exists()
