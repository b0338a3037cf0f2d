"""A real map result (recorded from `edgemap map` on the tiny model) with a real ONNX file, and a headless Chromium."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from edgemap.results import open_store
from edgemap.results.importer import map_results_run

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgemap.convert.onnx_export import export_onnx
    from edgemap.models import zoo

    return export_onnx(zoo.build("tiny"), tmp_path_factory.mktemp("onnx") / "tiny.onnx")


@pytest.fixture
def map_dir(tmp_path: Path, tiny_onnx: Path) -> Path:
    """The stored results.json + recipe.yaml of a real map run, re-rooted in tmp_path, with the chosen
    mapping's FP32 ONNX on disk (what the per-layer and device-fit sections read)."""
    out = tmp_path / "m"
    out.mkdir()
    results = json.loads((HERE / "data" / "map_results.json").read_text().replace("MAPDIR", str(tmp_path)))
    (out / "results.json").write_text(json.dumps(results))
    (out / "recipe.yaml").write_text((HERE / "data" / "map_recipe.yaml").read_text().replace("MAPDIR", str(tmp_path)))
    fp32 = Path(results["chosen"]["model_path"]).with_name("fp32.onnx")
    fp32.parent.mkdir(parents=True)
    fp32.write_bytes(tiny_onnx.read_bytes())
    model = Path(yaml.safe_load((out / "recipe.yaml").read_text())["model"]["path"])
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(b"stand-in for the checkpoint the map started from")  # the model's identity is its sha256
    return out


@pytest.fixture
def map_store(tmp_path: Path, map_dir: Path) -> tuple[Path, str]:
    store = tmp_path / "store.db"
    [run_id] = open_store(store).record(map_results_run(map_dir / "results.json"))
    return store, run_id


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed by tests/report/ensure_chromium.sh when missing."""
    proc = subprocess.run(["sh", str(HERE / "ensure_chromium.sh")], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.skip(f"headless Chromium unavailable: {proc.stderr.strip()}")
    return proc.stdout.strip().splitlines()[-1]
