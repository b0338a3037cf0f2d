"""Corrupt, truncated and wrong-format model files give one-line errors, never a native fault."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgemap.errors import EdgemapError
from edgemap.runtime.registry import load_session

ENGINES = ["onnxruntime", "openvino", "litert"]


def _copy_ir(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    shutil.copyfile(src.with_suffix(".bin"), dst.with_suffix(".bin"))
    return dst


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("backend", ENGINES)
def test_truncated_model_file(tiny_models: dict, tmp_path: Path, backend: str) -> None:
    src = tiny_models[backend]
    bad = _copy_ir(src, tmp_path / src.name) if backend == "openvino" else Path(shutil.copy(src, tmp_path / src.name))
    _truncate(bad.with_suffix(".bin") if backend == "openvino" else bad)
    with pytest.raises(EdgemapError, match="truncated|not a valid|cannot load"):
        load_session(backend, bad)


@pytest.mark.parametrize("backend, suffix", [("onnxruntime", ".onnx"), ("openvino", ".xml"), ("litert", ".tflite")])
def test_random_bytes_and_empty_files(tmp_path: Path, backend: str, suffix: str) -> None:
    junk = tmp_path / f"junk{suffix}"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(EdgemapError, match=str(junk.name)):
        load_session(backend, junk)
    empty = tmp_path / f"empty{suffix}"
    empty.write_bytes(b"")
    with pytest.raises(EdgemapError, match="empty"):
        load_session(backend, empty)


def test_file_of_the_wrong_format(tiny_models: dict, tmp_path: Path) -> None:
    fake = tmp_path / "really_tflite.onnx"
    shutil.copyfile(tiny_models["litert"], fake)
    with pytest.raises(EdgemapError, match="expected a onnx model, but the file looks like a tflite file"):
        load_session(None, fake)
    with pytest.raises(EdgemapError, match="looks like a onnx file"):
        load_session("litert", tiny_models["onnxruntime"])


def test_openvino_ir_problems(tiny_models: dict, tmp_path: Path) -> None:
    ir = _copy_ir(tiny_models["openvino"], tmp_path / "m.xml")
    ir.with_suffix(".bin").unlink()
    with pytest.raises(EdgemapError, match="weights file of the OpenVINO IR not found"):
        load_session(None, ir)
    ir.write_text(ir.read_text()[:300])
    with pytest.raises(EdgemapError, match="not well-formed XML"):
        load_session(None, ir)
    ir.write_text("<?xml version='1.0'?><html></html>")
    with pytest.raises(EdgemapError, match="root element <html>"):
        load_session(None, ir)


def test_missing_file_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(EdgemapError, match="model file not found"):
        load_session("onnxruntime", tmp_path / "nope.onnx")
    with pytest.raises(EdgemapError, match="cannot tell the model format from suffix '.pt'"):
        load_session(None, tmp_path / "model.pt")


def test_cli_bench_on_a_truncated_file_exits_2_with_one_line(tiny_models: dict, tmp_path: Path) -> None:
    bad = Path(shutil.copy(tiny_models["litert"], tmp_path / "cut.tflite"))
    _truncate(bad, 0.3)
    proc = subprocess.run([sys.executable, "-m", "edgemap.cli", "bench", str(bad), "--runs", "10", "--no-cold"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("edgemap: error:")]
    assert len(lines) == 1 and "cut.tflite" in lines[0]


def test_truncated_checkpoint(tmp_path: Path) -> None:
    from edgemap.models.shipped import shipped_checkpoint

    src = shipped_checkpoint()
    bad = Path(shutil.copy(src, tmp_path / src.name))
    shutil.copy(src.with_suffix(".json"), tmp_path / src.with_suffix(".json").name)
    _truncate(bad)
    with pytest.raises(EdgemapError, match="not a readable safetensors file"):
        load_session(None, bad)


FUZZ = """
import random, sys, numpy as np
from pathlib import Path
from edgemap.errors import EdgemapError
from edgemap.runtime.registry import load_session
rng, refused, ran = random.Random(0), 0, 0
for path in map(Path, sys.argv[1:]):
    data = path.read_bytes()
    for i in range(12):
        bad = bytearray(data)
        for _ in range(8):  # flip bytes near the start, where headers and tables live
            bad[rng.randrange(min(len(bad), 4096))] ^= 0xFF
        target = path.with_name(f"fuzz{i}{path.suffix}")
        target.write_bytes(bytes(bad))
        if path.suffix == ".xml":
            target.with_suffix(".bin").write_bytes(path.with_suffix(".bin").read_bytes())
        try:
            out = load_session(None, target, threads=1).run(np.zeros((1, 3, 32, 32), np.float32))
            ran += 1
        except EdgemapError:
            refused += 1
print("RESULT", refused, ran)
"""


def test_corrupted_files_never_fault_the_process(tiny_models: dict, tmp_path: Path) -> None:
    copies = []
    for backend in ENGINES:
        src = tiny_models[backend]
        copies.append(_copy_ir(src, tmp_path / src.name) if backend == "openvino" else Path(shutil.copy(src, tmp_path / src.name)))
    proc = subprocess.run([sys.executable, "-c", FUZZ, *map(str, copies)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-1500:]}"
    refused, ran = map(int, proc.stdout.split("RESULT")[-1].split())
    assert refused + ran == 36 and refused > 0
