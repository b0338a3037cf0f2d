"""`edgemap compress ...` as a user meets it: real subprocesses (bad input through the same entry point in-process),
exit codes, one-line errors, no partial files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def edgemap(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "EDGEMAP_CIFAR10"}  # tiny data only: the shipped sample
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([sys.executable, "-m", "edgemap.cli", *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("args, message", [
    (["prune", "{ckpt}", "--out", "{out}", "--ratio", "1.5"], "ratio must lie in (0, 1), got 1.5"),
    (["prune", "{ckpt}", "--out", "{out}", "--ratio", "0"], "ratio must lie in (0, 1), got 0.0"),
    (["prune", "{ckpt}", "--out", "{out}", "--precision", "fp16"], "precision must be one of fp32, bf16, got 'fp16'"),
    (["prune", "{ckpt}", "--out", "{out}", "--mixup", "-1"], "mixup must be >= 0 (0: off), got -1.0"),
    (["prune", "{ckpt}", "--out", "{out}", "--layer-ratio", "conv=x"], "a layer ratio must read MODULE=RATIO, got 'conv=x'"),
    (["prune", "{ckpt}", "--out", "{out}", "--keep", "stem", "--finetune-epochs", "0"], "no layer named stem in this model"),
    (["prune", "{ckpt}", "--out", "{out}"], "fine-tuning after pruning needs training data: give --data"),
    (["prune", "{ckpt}", "--out", "{out}", "--temperature", "1"], "--temperature and --alpha set the distillation loss: add --distill"),
    (["prune", "{ckpt}", "--out", "{out}", "--distill", "--alpha", "1.5"], "alpha must lie in [0, 1]"),
    (["prune", "{ckpt}", "--out", "{out}", "--teacher-mirror"], "teacher_mirror averages the distillation teacher; it needs distill"),
    (["prune", "{ckpt}", "--out", "{out}", "--val-data", "{ckpt}", "--finetune-epochs", "1"], "--finetune-epochs does not use it"),
    (["sparsify", "{ckpt}", "--out", "{out}", "--sparsity", "1"], "sparsity must lie in (0, 1)"),
    (["quantize", "{ckpt}.pt2", "--out", "{out}"], "model file not found"),  # any source quantizes; a missing one says so
    (["quantize", "{onnx}", "--out", "{out}", "--mode", "int4"], "unknown quantization mode 'int4'"),
])
def test_bad_input_is_one_line_exit_2_and_no_file(args: list[str], message: str, tiny_ckpt: Path, tiny_onnx: Path,
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli) -> None:  # noqa: ANN001
    monkeypatch.delenv("EDGEMAP_CIFAR10", raising=False)  # tiny data only: the shipped sample
    out = tmp_path / "result.bin"
    status, _, err = run_cli("compress", *[a.format(ckpt=tiny_ckpt, onnx=tiny_onnx, out=out) for a in args])
    lines = err.strip().splitlines()
    assert status == 2, err
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err
    assert list(tmp_path.glob("result*")) == [] and list(tmp_path.glob(".result*")) == []


def test_quantize_command_writes_int8_and_report(tiny_onnx: Path, tmp_path: Path) -> None:
    out, report = tmp_path / "int8.onnx", tmp_path / "report.json"
    r = edgemap("compress", "quantize", str(tiny_onnx), "--out", str(out), "--samples", "16", "--latency-runs", "5",
                "--report", str(report))
    assert r.returncode == 0, r.stderr
    assert "quantize_static" in r.stdout and "speedup" in r.stdout and "integer kernels" in r.stdout
    saved = json.loads(report.read_text())
    assert saved["extra"]["int8"]["integer_ops"] > 0 and saved["accuracy"]["after"]["n"] == 1000


def test_quantize_takes_any_model_source_by_exporting_it_first(tiny_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "int8.onnx"
    r = edgemap("compress", "quantize", str(tiny_ckpt), "--out", str(out), "--samples", "16", "--latency-runs", "0")
    assert r.returncode == 0, r.stderr
    assert out.is_file() and "integer kernels" in r.stdout


def test_prune_command_distils_at_the_temperature_given(tiny_ckpt: Path, tiny_npz: Path, tmp_path: Path) -> None:
    out, report, data = tmp_path / "pruned.safetensors", tmp_path / "report.json", tmp_path / "cifar"
    data.mkdir()
    (data / "cifar10_train.npz").write_bytes(tiny_npz.read_bytes())
    r = edgemap("compress", "prune", str(tiny_ckpt), "--out", str(out), "--finetune-epochs", "1", "--distill",
                "--temperature", "2", "--alpha", "0.7", "--data", str(data), "--latency-runs", "0", "--report", str(report),
                "--steps", "2", "--step-epochs", "1", "--weight-decay", "1e-4", "--no-norm-bias-decay")
    assert r.returncode == 0, r.stderr
    saved = json.loads(report.read_text())
    assert (saved["config"]["temperature"], saved["config"]["alpha"]) == (2.0, 0.7)
    assert (saved["config"]["iterative_steps"], saved["config"]["step_finetune_epochs"]) == (2, 1)
    assert (saved["config"]["weight_decay"], saved["config"]["norm_bias_decay"]) == (1e-4, False)
    assert saved["extra"]["soft_targets"]["temperature"] == 2.0 and out.is_file()


def test_prune_judges_its_fine_tuning_on_the_given_validation_images(tiny_ckpt: Path, tiny_npz: Path,  # noqa: ANN001
                                                                     tmp_path: Path) -> None:
    out, report = tmp_path / "pruned.safetensors", tmp_path / "report.json"
    r = edgemap("compress", "prune", str(tiny_ckpt), "--out", str(out), "--data", str(tiny_npz), "--val-data",
                str(tiny_npz), "--finetune-steps", "4", "--importance", "l2", "--max-drop", "0.5", "--round-to", "8",
                "--latency-runs", "0", "--report", str(report))
    assert r.returncode == 0, r.stderr
    info = json.loads(report.read_text())["extra"]["finetune"]
    assert info["judged_on"].startswith(f"{info['held_out']} validation images of ") and info["decision"]["verdict"]
    assert "judged on " in r.stdout and "one-sided 95 %" in r.stdout


def test_passes_lists_the_registry() -> None:
    r = edgemap("compress", "passes")
    assert r.returncode == 0 and "prune_channels" in r.stdout and "quantize_static" in r.stdout
