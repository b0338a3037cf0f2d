"""The shipped default model: its accuracy is re-measured from its file, and the demo runs offline."""

import json

import pytest

from edgemap.data.sample import load_sample
from edgemap.models.checkpoint import load_checkpoint
from edgemap.models.shipped import shipped_checkpoint
from edgemap.train.evaluate import evaluate


def test_shipped_model_reaches_85_percent_on_the_exact_sample():
    model, info = load_checkpoint(shipped_checkpoint())
    result = evaluate(model, load_sample(), info.normalization)
    assert result.top1 >= 85.0
    assert info.metrics["test"]["top1"] >= 85.0 and info.metrics["test"]["n"] == 10_000


def test_shipped_model_reaches_85_percent_on_the_full_test_split(cifar_root):
    from edgemap.data.cifar10 import load_cifar10

    model, info = load_checkpoint(shipped_checkpoint())
    result = evaluate(model, load_cifar10("test", cifar_root), info.normalization)
    assert result.top1 >= 85.0 and result.top1_exact >= 85.0
    assert result.top1 == pytest.approx(info.metrics["test"]["top1"], abs=0.01)


def test_demo_exports_checks_parity_and_times_both_runtimes(tmp_path):
    from edgemap.commands.demo import run_demo

    figures = run_demo(tmp_path, runs=20, threads=1)
    assert (tmp_path / "resnet9s.onnx").is_file()
    assert figures["parity"]["top1_agreement_pct"] >= 99.9 and figures["parity"]["max_abs_diff"] < 1e-3
    assert figures["sample_top1"]["onnxruntime"] >= 85.0
    for runtime in ("torch", "onnxruntime"):
        lat = figures["latency_batch1"][runtime]
        assert lat["n"] == 20 and 0 < lat["p50_ms"] <= lat["p99_ms"]
    json.dumps(figures)  # serialisable for --json
