"""`edgemap report`: one self-contained HTML file from stored runs and a deployment's predictions."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from edgemap.errors import EdgemapError
from edgemap.results import Metric, RunRecord, open_store
from edgemap.results.predictions import PredictionLog
from edgemap.report.html import build_report, write_report

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("EDGEMAP_TEST_ARTIFACTS", ROOT / "out" / "test-artifacts"))


def sections(html: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", html)


def images(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', html)


def assert_self_contained(html: str) -> None:
    assert images(html) and all(src.startswith("data:image/png;base64,") for src in images(html))
    assert not re.search(r'(src|href)="(https?:|//|file:)', html) and "<link" not in html


def test_map_report_has_every_section_and_embeds_everything(map_store: tuple[Path, str]) -> None:
    store, run_id = map_store
    title, html = build_report(open_store(store, read_only=True), [run_id])
    heads = sections(html)
    for want in ("Mapping search on host", "Before → after", "Reference conversions", "Per-layer cost", "Device fit", "Evidence"):
        assert any(h.startswith(want) for h in heads), (want, heads)
    assert len(images(html)) == 3  # accuracy vs latency, accuracy vs size, per-layer bars
    assert_self_contained(html)
    from edgemap.devices.catalogue import list_profiles

    fit = html.split("Device fit across the catalogue")[1]
    assert all(f"<td>{p.name}</td>" in fit for p in list_profiles())  # one row per catalogue device
    assert "measured" in fit and "estimated" in fit and "★" in html  # host latency measured, others estimated


def test_eval_report_shows_confusion_and_per_class_accuracy(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    cm = np.diag([9, 8, 7]) + 1
    store.record(RunRecord(command="eval", model="x.onnx", metrics=[Metric("top1", 80.0, "%")],
                           payload={"top1": 80.0, "n": 30, "confusion": cm.tolist(), "class_names": ["a", "b", "c"]}))
    _, html = build_report(store, [])  # default: the latest run
    assert "per-class accuracy" in html and len(images(html)) == 2 and "<td>a</td>" in html
    assert_self_contained(html)


def test_deployment_report_plots_history_and_least_confident_thumbnails(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    rng = np.random.default_rng(0)
    with PredictionLog("d" * 64, store, flush_interval_s=0, deployment="shop-camera") as log:
        for i in range(60):
            p = float(rng.uniform(0.2, 1.0))
            img = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            log.add([["cat", "dog", "ship"][i % 3], "frog"], [i % 3, 6], [p, 1 - p], source=f"cam/{i}.jpg",
                    latency_ms=float(rng.gamma(2, 0.5)), image=img)
    _, html = build_report(store, [], deployment="dddd")
    assert any(h.startswith("Deployment") for h in sections(html)) and "shop-camera" in html
    assert html.count('<figure>') == 12  # the 12 least confident inputs, each with its thumbnail
    assert len(images(html)) == 4 + 12  # confidence and latency over time, classes, latency histogram
    assert_self_contained(html)
    with pytest.raises(EdgemapError, match="no predictions recorded"):
        build_report(store, [], deployment="0123")


def test_runs_of_different_models_and_an_empty_store_are_refused(tmp_path: Path, map_store: tuple[Path, str]) -> None:
    store_path, map_id = map_store
    store = open_store(store_path)
    [other] = store.record(RunRecord(command="eval", model="other.onnx", model_sha256="e" * 64))
    with pytest.raises(EdgemapError, match="different models"):
        build_report(store, [map_id, other])
    empty = open_store(tmp_path / "empty.db")
    with pytest.raises(EdgemapError, match="store is empty"):
        build_report(empty, [])


def test_cli_writes_the_file_atomically_and_says_where(map_store: tuple[Path, str], tmp_path: Path) -> None:
    store, run_id = map_store
    out = tmp_path / "r" / "report.html"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "edgemap.cli", "report", run_id, "--store", str(store), "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == f"report: {out.resolve()}", proc.stderr
    assert out.read_text().startswith("<!doctype html>") and not list(out.parent.glob(".*.tmp"))
    bad = subprocess.run([sys.executable, "-m", "edgemap.cli", "report", run_id, "nope", "--store", str(store), "--out",
                          str(tmp_path / "x.html")], capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and not (tmp_path / "x.html").exists()


def _chromium(binary: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                               "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                               f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120)


def test_the_report_renders_in_headless_chromium(chromium: str, map_store: tuple[Path, str], tmp_path: Path) -> None:
    store, run_id = map_store
    with PredictionLog("d" * 64, store, flush_interval_s=0) as log:
        for i in range(20):
            log.add(["cat"], [3], [0.3 + i / 40], source=f"{i}.png", latency_ms=1.0 + i % 3,
                    image=np.full((32, 32, 3), i * 10, np.uint8))
    page = write_report(open_store(store, read_only=True), [run_id], tmp_path / "report.html", deployment="d" * 8)
    n_images = len(images(page.read_text()))
    dom = _chromium(chromium, "--virtual-time-budget=5000", "--dump-dom", page.as_uri())
    check = re.search(r'<div id="edgemap-check" data-status="(\w+)">([^<]*)</div>', dom.stdout)
    assert check, dom.stderr[-2000:]
    assert check.group(1) == "ok" and check.group(2) == f"images-ok {n_images}/{n_images}", check.group(0)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report_screenshot.png"
    _chromium(chromium, "--window-size=1200,4000", f"--screenshot={shot}", page.as_uri())
    assert shot.is_file() and shot.read_bytes()[:4] == b"\x89PNG"
    for name, inject, want in (("bad_image", '<img src="data:image/png;base64,AAAA">', f"images-failed {n_images}/{n_images + 1}"),
                               ("script_error", "<script>undefinedCall()</script>", "script-errors: ")):
        broken = tmp_path / f"{name}.html"  # the page's own check must be able to fail
        broken.write_text(page.read_text().replace("<h1>", inject + "<h1>", 1))
        dom = _chromium(chromium, "--virtual-time-budget=5000", "--dump-dom", broken.as_uri())
        check = re.search(r'<div id="edgemap-check" data-status="(\w+)">([^<]*)</div>', dom.stdout)
        assert check.group(1) == "failed" and want in check.group(2), (name, check.group(0))


def test_the_call_map_makes_records_the_run_and_writes_report_html(map_dir: Path, tmp_path: Path) -> None:
    import json

    from edgemap.report.map_report import record_and_report_map
    from edgemap.results.queries import list_runs

    summary = json.loads((map_dir / "results.json").read_text())
    page = record_and_report_map(summary, map_dir, store=str(tmp_path / "s.db"))
    assert page == map_dir / "report.html" and any(h.startswith("Device fit") for h in sections(page.read_text()))
    [run] = list_runs(open_store(tmp_path / "s.db", read_only=True))
    assert run["command"] == "map" and run["device"] == "host" and run["metrics"]["latency_ms"] > 0
    assert record_and_report_map(summary, map_dir, store="off").is_file()  # no store: the report is still written


def test_one_bench_of_two_conversions_reports_as_one_comparison(tmp_path: Path, tiny_onnx: Path) -> None:
    from edgemap.convert.onnx_export import export_onnx
    from edgemap.models import zoo
    from edgemap.results.builders import bench_runs
    from edgemap.runtime.bench import Candidate, benchmark

    fixed = export_onnx(zoo.build("tiny"), tmp_path / "tiny_b1.onnx", dynamic_batch=False)
    result = benchmark([Candidate.of(tiny_onnx), Candidate.of(fixed)], threads=1, runs=10, warmup=1, batches=(1,), cold=False)
    store = open_store(tmp_path / "b.db")
    ids = store.record(*bench_runs(result))
    _, html = build_report(store, ids)  # two files, one bench: not "different models"
    assert "Benchmarks (measured on this host)" in sections(html) and html.count("[onnxruntime]") >= 2
    assert_self_contained(html)
    with pytest.raises(EdgemapError, match="different models"):
        build_report(store, [ids[0], store.record(RunRecord(command="eval", model="other.onnx"))[0]])


def test_a_deployment_is_found_by_its_bundle_folder(tmp_path: Path) -> None:
    from edgemap.results.predictions import open_prediction_log

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text('{"format": 1}')
    with open_prediction_log(bundle, store=str(tmp_path / "s.db"), flush_interval_s=0) as log:
        log.add(["cat"], [3], [0.9], source="a.png", latency_ms=1.0)
    _, html = build_report(open_store(tmp_path / "s.db"), [], deployment=str(bundle))
    assert "1 predictions" in html.replace(",", "") and "(bundle)" in html


def test_an_eval_of_a_map_candidate_reports_with_the_map(map_store: tuple[Path, str], map_dir: Path) -> None:
    from edgemap.results.queries import get_run
    from edgemap.results.records import file_sha256

    store_path, map_id = map_store
    store = open_store(store_path)
    fp32 = next(Path(t["model_path"]) for t in get_run(store, map_id)["payload"]["trials"] if t["model_path"].endswith("fp32.onnx"))
    assert file_sha256(fp32) in get_run(store, map_id)["payload"]["artifact_sha256"].values()
    [ev] = store.record(RunRecord(command="eval", model=str(fp32), model_sha256=file_sha256(fp32),
                                  payload={"top1": 75.0, "n": 12, "confusion": [[5, 1], [2, 4]], "class_names": ["a", "b"]}))
    _, html = build_report(store, [ev, map_id])  # the eval of a candidate the map made: the same model
    assert any(h.startswith("Evaluation:") for h in sections(html)) and any(h.startswith("Device fit") for h in sections(html))


def test_a_map_where_nothing_fits_reports_the_nearest_misses(map_dir: Path, tmp_path: Path) -> None:
    import json

    from edgemap.results.importer import map_results_run

    results = json.loads((map_dir / "results.json").read_text())
    near = sorted(results["trials"], key=lambda t: t["latency_ms"])[:2]
    for t in near:
        t["violations"] = ["latency 0.01 ms > 0.001 ms"]
    results.update(chosen=None, nearest=near, comparison={}, bundle=None)
    (map_dir / "results.json").write_text(json.dumps(results))
    store = open_store(tmp_path / "s.db")
    [rid] = store.record(map_results_run(map_dir / "results.json"))
    _, html = build_report(store, [rid])
    assert "No candidate met the constraints" in html and "latency 0.01 ms &gt; 0.001 ms" in html
    assert not any(h.startswith("Before") for h in sections(html)) and any(h.startswith("Device fit") for h in sections(html))


def test_an_interrupted_maps_optuna_study_reports_its_candidates(map_dir: Path, tmp_path: Path) -> None:
    import json

    optuna = pytest.importorskip("optuna")
    from edgemap.results.importer import import_paths

    trials = json.loads((map_dir / "results.json").read_text())["trials"]
    (map_dir / "results.json").unlink()  # killed before the end: only the study is left
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name="tiny-jetson-orin-nano-latency-0123abcd", storage=f"sqlite:///{map_dir / 'study.db'}",
                                directions=["maximize", "minimize"])
    for t in trials + trials[:1]:  # a candidate tried twice is one candidate
        trial = study.ask()
        trial.set_user_attr("key", t["key"])
        trial.set_user_attr("metrics", json.dumps(t))
        study.tell(trial, [t["accuracy"], t["latency_ms"]])
    study.ask()  # one still running: not counted
    [run] = import_paths([map_dir])
    assert run.device == "jetson-orin-nano" and run.command == "map" and run.payload["chosen"] is None
    assert len(run.payload["trials"]) == len(trials) and run.payload["front"]
    store = open_store(tmp_path / "s.db")
    [rid] = store.record(run)
    _, html = build_report(store, [rid])
    assert f"{len(trials)} candidates" in html and any(h.startswith("Device fit") for h in sections(html))
