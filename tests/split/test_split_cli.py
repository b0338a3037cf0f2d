"""`edgemap split ...` as a user meets it: a real subprocess on a user ONNX model and an image folder."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image


def edgemap(*args: str, cwd=None) -> subprocess.CompletedProcess:  # noqa: ANN001
    return subprocess.run([sys.executable, "-m", "edgemap.cli", "split", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_plan_export_infer_and_bad_points(tmp_path, helpers, run_cli):
    model = helpers.chain_model(tmp_path / "user.onnx")
    data = tmp_path / "images"
    rng = np.random.default_rng(0)
    for cls in ("zebra", "apple"):  # class folders not in model order, grayscale PNGs of another size
        (data / cls).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8)).save(data / cls / f"{i}.png")
    common = ["--model", str(model), "--data", str(data), "--preprocess", "unit,channels=gray", "--work", str(tmp_path / "w")]
    (tmp_path / "token").write_text("user-token-" + "z" * 29 + "\n")  # 40 characters: the plan counts its header
    r = edgemap("plan", *common, "--bandwidth-mbps", "5", "--rtt-ms", "20", "--max-accuracy-drop", "0.5",
                "--plot", str(tmp_path / "plot.png"), "--json", str(tmp_path / "plan.json"), "--qualities", "60",
                "--token-file", str(tmp_path / "token"))
    assert r.returncode == 0, r.stderr
    assert "best (latency):" in r.stdout and (tmp_path / "plot.png").stat().st_size > 1000
    plan = json.loads((tmp_path / "plan.json").read_text())
    labels = {o["label"] for o in plan["options"]}
    assert plan["network"]["request_header_bytes"] == 320 + len("Authorization: Bearer \r\n") + 40
    assert {"device", "input/raw", "input/png", "input/jpeg-q60", "input/webp-q60", "c3/int8"} <= labels

    r = edgemap("export", *common, "--out", str(tmp_path / "b"), "--points", "c3,c5", "--qualities", "60")
    assert r.returncode == 0, r.stderr
    r = edgemap("infer", str(tmp_path / "b" / "edge"), str(data / "apple" / "0.png"), "--option", "c3/int8",
                "--fallback", "local", "--json")
    assert r.returncode == 0, r.stderr
    line = json.loads(r.stdout.strip().splitlines()[-1])
    assert line["ran"] == "fallback" and line["option"] == "c3/int8"

    plan_args = ("split", "plan", *common, "--bandwidth-mbps", "5", "--rtt-ms", "20", "--show", "3", "--classes")
    status, _, err = run_cli(*plan_args, "cat,dog,zebra")
    lines = err.strip().splitlines()  # the folders are relabelled by name to the model's order: apple is unknown
    assert status == 2 and len(lines) == 1 and "the data has 'apple' that --classes does not know" in lines[0]
    status, out, err = run_cli(*plan_args, "zebra,apple,cat")
    assert status == 0 and "best (latency):" in out, err
    assert max(len(line) for line in out.splitlines()) > 100  # not a terminal: the table is not wrapped at 80 columns

    r = edgemap("export", *common, "--out", str(tmp_path / "x"), "--points", "c99")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "unknown split point 'c99'" in lines[0], r.stderr


def test_wrong_half_and_missing_server_are_refused(split_export, tmp_path):
    import pytest

    from edgemap.errors import EdgemapError
    from edgemap.split.adaptive import run_files

    image = tmp_path / "x.png"
    Image.fromarray(split_export["images"].images[0][..., 0]).save(image)
    args = ("c3/int8", 10.0, 20.0, "latency", 0.5, False, False, 5.0, 1, False)
    with pytest.raises(EdgemapError, match="server half of a split; this command needs the edge half"):
        run_files(split_export["server"], [image], None, *args)
    with pytest.raises(EdgemapError, match="needs --server"):
        run_files(split_export["edge"], [image], None, *args)
