"""The benchmark harness: statistics, throughput, cold start in a fresh process, JSON and table output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgemap.errors import EdgemapError
from edgemap.runtime.bench import Candidate, benchmark, cold_start, file_size


def test_benchmark_compares_backends_interleaved(tiny_models: dict) -> None:
    cands = [Candidate.of(tiny_models["onnxruntime"]), Candidate.of(tiny_models["litert"]),
             Candidate.of(tiny_models["fixed_batch"])]
    result = benchmark(cands, threads=1, runs=12, warmup=2, batches=(1, 2, 4), cold=False)
    rows = {r["backend"] + r["model"][-8:]: r for r in result["results"]}
    assert len(result["results"]) == 3 and result["interleaved"]
    for r in result["results"]:
        lat = r["latency"]
        assert lat["n"] == 12 and 0 < lat["min_ms"] <= lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["max_ms"]
        assert r["threads"] == 1 and r["file_bytes"] == Path(r["model"]).stat().st_size
    fixed = next(r for r in rows.values() if r["model"].endswith("tiny_b2.onnx"))
    assert fixed["throughput"]["2"]["images_per_s"] > 0
    assert fixed["throughput"]["1"] is None and fixed["throughput"]["4"] is None  # batch the model cannot take
    assert result["fastest_p50"] in {r["label"] for r in result["results"]}
    ev = result["evidence"]
    assert ev["threads"] == 1 and "onnxruntime" in ev["versions"] and ev["cpu"]


def test_cold_start_runs_in_a_fresh_process(tiny_models: dict) -> None:
    cold = cold_start(Candidate.of(tiny_models["openvino"]), threads=1)
    assert 0 < cold["first_inference_s"] < cold["cold_start_s"]
    assert cold["peak_rss_mib"] >= cold["rss_mib"] > cold["python_baseline_rss_mib"] > 0


def test_openvino_size_counts_the_bin(tiny_models: dict) -> None:
    xml = tiny_models["openvino"]
    assert file_size(xml) == xml.stat().st_size + xml.with_suffix(".bin").stat().st_size


def test_bad_arguments(tiny_models: dict, tmp_path: Path) -> None:
    with pytest.raises(EdgemapError, match="model file not found"):
        Candidate.of(tmp_path / "x.onnx")
    with pytest.raises(EdgemapError, match="runs >= 10"):
        benchmark([Candidate.of(tiny_models["onnxruntime"])], runs=3)


def test_cli_bench_writes_json_and_table(tiny_models: dict, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "edgemap.cli", "bench", str(tiny_models["onnxruntime"]),
                           str(tiny_models["openvino"]), "--runs", "10", "--warmup", "1", "--batch", "1",
                           "--batch", "3", "--json", str(out)], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert [r["backend"] for r in data["results"]] == ["onnxruntime", "openvino"]
    assert data["batches"] == [1, 3] and data["results"][1]["cold_start"]["cold_start_s"] > 0
    assert "tiny.onnx [onnxruntime]" in proc.stdout and "p99/p50" in proc.stdout
    assert not list(out.parent.glob(".*.tmp"))  # written atomically
