"""The command line as a user meets it: real subprocesses, exit codes, one-line errors."""

import subprocess
import sys

import numpy as np
import pytest


def edgemap(*args, env=None):
    return subprocess.run([sys.executable, "-m", "edgemap.cli", *args], capture_output=True, text=True, env=env, timeout=300)


def test_models_lists_the_zoo_with_params_and_macs():
    r = edgemap("models")
    assert r.returncode == 0, r.stderr
    assert "resnet9s" in r.stdout and "writeup_cnn" in r.stdout and "mobilenetv2" in r.stdout
    assert "24.04 M" in r.stdout  # resnet9s MACs


@pytest.mark.parametrize("args, message", [
    (["eval", "--data", "/nonexistent/cifar"], "/nonexistent/cifar: data not found"),
    (["eval", "/nonexistent/model.safetensors"], "model.safetensors: checkpoint not found"),
    (["train", "--model", "nosuchnet"], "unknown model 'nosuchnet'"),
    (["issues"], "No such command 'issues'"),  # usage errors from typer's own click: one line too, not a traceback
    (["map", "--bogus"], "No such option: --bogus"),
    (["eval", "--limit", "abc"], "Invalid value for '--limit'"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, run_cli):
    status, _, err = run_cli(*args)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err


def test_eval_rejects_labels_out_of_range(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, images=np.zeros((3, 32, 32, 3), np.uint8), labels=np.array([0, 11, 2]))
    r = edgemap("eval", "--data", str(path))
    assert r.returncode == 2 and "label 11 at index 1 is out of range 0..9" in r.stderr


def test_train_writes_a_checkpoint_that_eval_reads(tmp_path, tiny_npz):
    data = tmp_path / "data"
    data.mkdir()
    (data / "cifar10_train.npz").write_bytes(tiny_npz.read_bytes())
    (data / "cifar10_test.npz").write_bytes(tiny_npz.read_bytes())
    out = tmp_path / "m.safetensors"
    r = edgemap("train", "--model", "tiny", "--epochs", "2", "--batch-size", "8", "--threads", "1", "--data", str(data), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.is_file() and out.with_suffix(".json").is_file()
    r = edgemap("eval", str(out), "--data", str(data / "cifar10_test.npz"))
    assert r.returncode == 0, r.stderr
    assert "top-1" in r.stdout and "confusion matrix" in r.stdout
