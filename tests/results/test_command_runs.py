"""Every measuring command records one run with the right model / parent sha256 and measured / estimated labels,
as a user meets it: the CLI in a subprocess against a fresh store (tiny model, the shipped sample)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from edgemap.core.artifact import Artifact


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgemap.models import zoo
    from edgemap.models.checkpoint import CheckpointInfo, save_checkpoint

    torch.manual_seed(0)
    return save_checkpoint(zoo.build("tiny"), CheckpointInfo(architecture="tiny"), tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


def digest(path: Path, fmt: str) -> str:
    """The sha256 an Artifact gives the file (a checkpoint with its sidecar): what a run must record."""
    return Artifact(path, fmt, "fp32", (3, 32, 32), {}).sha256


def stored(edgemap, store: Path, command: str | None = None) -> list[dict]:  # noqa: ANN001
    args = ("--command", command) if command else ()
    proc = edgemap("runs", "export", "--format", "json", *args, store=store)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def metric(run: dict, name: str, subject: str = "") -> dict:
    [m] = [m for m in run["metrics"] if m["name"] == name and m["subject"] == subject]
    return m


def test_convert_quantize_and_estimate_record_a_traceable_chain(tiny_ckpt: Path, tmp_path: Path, tiny_npz: Path,
                                                                 cli) -> None:  # noqa: ANN001
    edgemap, store = cli, tmp_path / "s.db"
    onnx, q = tmp_path / "tiny.onnx", tmp_path / "q.onnx"
    conv = edgemap("convert", str(tiny_ckpt), "--to", "onnx", "--out", str(onnx), "--parity-n", "50", store=store)
    assert conv.returncode == 0 and "recorded run" in conv.stderr, conv.stderr
    quant = edgemap("compress", "quantize", str(onnx), "--out", str(q), "--mode", "dynamic", "--latency-runs", "5",
                    "--eval-data", str(tiny_npz), store=store)
    assert quant.returncode == 0 and "recorded run" in quant.stderr, quant.stderr
    est = edgemap("estimate", str(q), "--device", "rpi4", "--json", store=store)
    assert est.returncode == 0 and json.loads(est.stdout)["device"] == "rpi4"  # the record line goes to stderr only
    [c] = stored(edgemap, store, "convert")
    assert c["model_sha256"] == digest(onnx, "onnx") and c["parent_sha256"] == digest(tiny_ckpt, "checkpoint")
    assert c["backend"] == "onnxruntime" and c["recipe"]["format"] == "onnx" and c["evidence"]["cpu"]
    assert metric(c, "top1_agreement")["value"] == 1.0 and metric(c, "size_bytes")["basis"] == "measured"
    [k] = stored(edgemap, store, "compress")
    assert k["model_sha256"] == digest(q, "onnx") and k["parent_sha256"] == c["model_sha256"]
    assert k["recipe"]["type"] == "quantize_dynamic" and k["evidence"]["versions"]["onnxruntime"]
    assert metric(k, "top1", "after")["value"] == metric(k, "top1")["value"]  # the output's figures are the run's own
    assert metric(k, "latency_p50_ms", "before")["basis"] == "measured" and metric(k, "n", "after")["value"] == 40
    [e] = stored(edgemap, store, "estimate")
    assert e["model_sha256"] == k["model_sha256"] and e["device"] == "rpi4"
    assert metric(e, "latency_ms")["basis"] == "estimated" and metric(e, "energy_mj")["basis"] == "estimated"
    assert metric(e, "macs")["basis"] == "measured" and metric(e, "flash_bytes")["value"] > 0
    elsewhere = tmp_path / "elsewhere"  # the stored path is absolute: a report from another folder finds the file
    elsewhere.mkdir()
    page = edgemap("report", e["id"], "--out", str(tmp_path / "e.html"), store=store, cwd=elsewhere)
    assert page.returncode == 0, page.stderr
    assert "Per-layer cost on rpi4" in (tmp_path / "e.html").read_text()


def test_a_compress_recipe_records_one_run_per_pass_parent_to_child(tiny_ckpt: Path, tmp_path: Path, tiny_npz: Path,
                                                                    cli) -> None:  # noqa: ANN001
    edgemap, store = cli, tmp_path / "s.db"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"schema": 2, "model": {"path": str(tiny_ckpt)},
                                      "passes": [{"type": "export_onnx"}, {"type": "quantize_dynamic"}]}))
    proc = edgemap("compress", "recipe", str(recipe), "--out-dir", str(tmp_path / "o"), "--latency-runs", "3",
                   "--eval-data", str(tiny_npz), store=store)
    assert proc.returncode == 0 and "recorded runs" in proc.stderr, proc.stderr
    runs = {r["label"]: r for r in stored(edgemap, store)}
    export, quant = runs["export_onnx"], runs["quantize_dynamic"]
    assert export["parent_sha256"] == digest(tiny_ckpt, "checkpoint")
    assert quant["parent_sha256"] == export["model_sha256"] == digest(Path(export["model"]), "onnx")
    assert export["group_id"] == quant["group_id"] and quant["recipe"]["pass"]["type"] == "quantize_dynamic"
    assert quant["recipe"]["recipe"]["model"]["path"] == str(tiny_ckpt)


def test_map_records_its_run_and_writes_a_self_contained_report_and_run_records_the_rebuild(
        tiny_ckpt: Path, tmp_path: Path, cli) -> None:  # noqa: ANN001
    edgemap, store, out = cli, tmp_path / "s.db", tmp_path / "m"
    proc = edgemap("map", "--model", str(tiny_ckpt), "--trials", "1", "--backends", "onnxruntime", "--precisions", "fp32",
                   "--threads", "1", "--latency-runs", "5", "--max-accuracy-drop", "100", "--out", str(out), store=store)
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = out / "report.html"
    assert f"html report: {page}" in proc.stdout.replace("\n", "") and page.is_file()
    html = page.read_text()
    heads = re.findall(r"<h2>(.*?)</h2>", html)
    assert heads[0].startswith("Mapping search") and any(h.startswith("Evaluation:") for h in heads)  # the confusion
    assert "confusion matrix" in html and 'id="edgemap-check"' in html  # the page checks itself in a browser
    assert all(src.startswith("data:image/png;base64,") for src in re.findall(r'<img src="([^"]*)"', html))
    assert not re.search(r'(src|href)="(https?:|//|file:)', html)
    results = json.loads((out / "results.json").read_text())
    chosen = results["chosen"]
    cm = chosen["confusion"]  # the chosen mapping's own predictions: its diagonal is its accuracy
    assert len(results["class_names"]) == 10 and 100 * sum(cm[i][i] for i in range(len(cm))) / sum(map(sum, cm)) == \
        pytest.approx(chosen["accuracy"])
    [m] = stored(edgemap, store, "map")
    assert m["model_sha256"] == digest(tiny_ckpt, "checkpoint") and m["device"] == "host" and m["recipe"]["passes"]
    assert metric(m, "accuracy")["value"] == chosen["accuracy"] and metric(m, "energy_mj")["basis"] == "estimated"
    assert metric(m, "latency_ms")["basis"] == "measured"  # the host profile: measured here
    replay = edgemap("run", str(out / "recipe.yaml"), "--out", str(tmp_path / "r"), store=store)
    assert replay.returncode == 0 and "recorded run" in replay.stderr, replay.stderr[-2000:]
    [r] = stored(edgemap, store, "run")
    assert r["model_sha256"] == chosen["sha256"] and r["parent_sha256"] == m["model_sha256"]
    assert r["recipe"]["chosen"] == chosen["key"] and metric(r, "accuracy")["value"] == pytest.approx(chosen["accuracy"])


def test_store_off_records_nothing_and_a_broken_store_is_one_warning(tiny_ckpt: Path, tmp_path: Path, cli) -> None:  # noqa: ANN001
    edgemap = cli
    onnx = tmp_path / "t.onnx"
    off = edgemap("--store", "off", "convert", str(tiny_ckpt), "--out", str(onnx), "--parity-n", "20")
    assert off.returncode == 0 and "recorded" not in off.stderr and onnx.is_file()
    bad = tmp_path / "bad.db"
    bad.write_text("not a database")
    proc = edgemap("estimate", str(onnx), "--device", "rpi4", store=bad)
    assert proc.returncode == 0 and "latency" in proc.stdout and bad.read_text() == "not a database"
    assert [line for line in proc.stderr.splitlines() if "warning" in line] == [proc.stderr.strip()]


def test_demo_records_the_checkpoint_and_its_export_as_one_group(tmp_path: Path) -> None:
    """The demo's figures (here of a tiny checkpoint and its real ONNX export) as two runs, ONNX parented to the checkpoint."""
    from edgemap.convert.onnx_export import export_onnx
    from edgemap.models import zoo
    from edgemap.models.checkpoint import CheckpointInfo, save_checkpoint
    from edgemap.results.builders import demo_runs

    ckpt = save_checkpoint(zoo.build("tiny"), CheckpointInfo(architecture="tiny"), tmp_path / "tiny.safetensors")
    onnx = export_onnx(zoo.build("tiny"), tmp_path / "tiny.onnx")
    lat = {"p50_ms": 1.0, "p99_ms": 2.0}
    figures = {"model": "tiny", "checkpoint": str(ckpt), "onnx": str(onnx), "sample_top1": {"torch": 10.0, "onnxruntime": 10.0},
               "parity": {"max_abs_diff": 1e-6, "top1_agreement_pct": 100.0}, "size_bytes": {"safetensors": 1, "onnx": 2},
               "latency_batch1": {"torch": lat, "onnxruntime": lat}, "evidence": {"cpu": "x"}}
    torch_run, ort_run = demo_runs(figures)
    assert torch_run.group_id == ort_run.group_id and ort_run.parent_sha256 == torch_run.model_sha256 == digest(ckpt, "checkpoint")
    assert ort_run.model_sha256 == digest(onnx, "onnx") and {m.name for m in ort_run.metrics} >= {"parity_top1_agreement",
                                                                                                 "latency_p50_ms", "top1_sample"}


def test_the_benchmarks_shared_json_writer_records_the_file_as_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from edgemap.results import open_store
    from edgemap.results.queries import list_runs

    spec = importlib.util.spec_from_file_location("compress_common", Path(__file__).parents[2] / "benchmarks" / "compress_common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    store = tmp_path / "s.db"
    monkeypatch.setenv("EDGEMAP_STORE", str(store))
    path = common.write_result_json(tmp_path / "bench_x.json", {"headline": {"p50_ms": 1.5}, "evidence": {"cpu": "x"}})
    [run] = list_runs(open_store(store, read_only=True))
    assert json.loads(path.read_text())["headline"] == {"p50_ms": 1.5}
    assert run["command"] == "benchmark" and run["label"] == "bench_x" and run["metrics"] == {"p50_ms": 1.5}
