"""The mapping search end to end on the tiny model: recipe, bundle, resume."""

import json

import pytest
import torch

from edgemap.deploy.edge import EdgeModel
from edgemap.models import zoo
from edgemap.models.checkpoint import CheckpointInfo, save_checkpoint
from edgemap.search.mapper import MapOptions, run_map
from edgemap.search.records import SearchSummary
from edgemap.search.replay import run_recipe_file
from edgemap.search.strategy import Constraints


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return save_checkpoint(zoo.build("tiny"), CheckpointInfo(architecture="tiny"), path)


def options(ckpt, out, **kw):
    base = dict(model=ckpt, out_dir=out, trials=4, backends=("onnxruntime",), precisions=("fp32", "int8"), threads=(1,),
                latency_runs=10, progress=False, constraints=Constraints(max_accuracy_drop=100.0), timing_rounds=1)
    return MapOptions(**{**base, **kw})


def test_map_writes_front_recipe_bundle_and_the_bundle_reproduces_it(tiny_ckpt, tmp_path):
    summary = run_map(options(tiny_ckpt, tmp_path / "m"))
    assert summary.chosen is not None and summary.front
    assert len(summary.trials) == 4  # 1 fp32 + 3 int8 calibrations: the whole grid
    assert {"chosen", "onnxruntime_fp32", "torch_eager_fp32"} <= set(summary.comparison)
    timing = summary.timing  # every model alone in a fresh process, named CPU and its INT8 instructions
    assert timing["rounds"] == 1 and "VNNI" in timing["cpu"] and "fresh process" in timing["method"]
    row = summary.comparison["onnxruntime_fp32"]
    assert row["spread_ms"][0] <= row["p50_ms"] <= row["spread_ms"][1] and row["verdict"] in ("faster", "slower", "tie", "same")
    results = json.loads((tmp_path / "m" / "results.json").read_text())
    assert results["evidence"]["cpu"] and (tmp_path / "m" / "report.md").is_file()
    assert results["chosen"]["key"] == summary.chosen.key and results["constraints"]["max_accuracy_drop"] == 100.0
    stored = SearchSummary.from_dict(results)  # results.json reads back into the typed summary it was written from
    assert stored.trials == summary.trials and stored.chosen == summary.chosen and stored.front == summary.front
    edge = EdgeModel(summary.bundle)
    assert edge.selftest["top1_agreement"] == 1.0
    replay = run_recipe_file(summary.recipe, tmp_path / "replay")
    assert replay["accuracy"] == pytest.approx(summary.chosen.accuracy, abs=0.5)


def test_a_second_run_reuses_the_study_and_measures_nothing_again(tiny_ckpt, tmp_path):
    first = run_map(options(tiny_ckpt, tmp_path / "m", trials=2))
    second = run_map(options(tiny_ckpt, tmp_path / "m", trials=3))
    keys1 = {t.key for t in first.trials}
    assert keys1 <= {t.key for t in second.trials} and len(second.trials) == 3
    again = {t.key: t for t in second.trials}
    for t in first.trials:  # identical records: taken from the study, not re-measured
        assert again[t.key].host_latency == t.host_latency


def test_no_feasible_mapping_reports_the_nearest(tiny_ckpt, tmp_path):
    summary = run_map(options(tiny_ckpt, tmp_path / "m", trials=2, constraints=Constraints(max_accuracy_drop=100.0, max_latency_ms=1e-6)))
    assert summary.chosen is None and summary.nearest
    assert any("latency" in v for v in summary.nearest[0].violations)


# the Ray executor's front against the local one: tests/search/test_portable.py, on a two-node cluster


def test_map_takes_a_user_onnx_model_with_its_preprocessing(tmp_path):
    from edgemap.convert.onnx_export import export_onnx

    torch.manual_seed(0)
    onnx_path = export_onnx(zoo.build("tiny"), tmp_path / "user.onnx")
    summary = run_map(options(str(onnx_path), tmp_path / "m", trials=2, preprocess="cifar10"))
    assert summary.chosen is not None
    manifest = EdgeModel(summary.bundle).manifest
    assert manifest["preprocess"]["resize"] == [32, 32] and manifest["preprocess"]["mean"][0] == pytest.approx(0.4914)


def test_user_model_without_preprocessing_or_with_wrong_classes_is_refused(tmp_path):
    from edgemap.convert.onnx_export import export_onnx
    from edgemap.errors import EdgemapError

    onnx_path = export_onnx(zoo.build("tiny", num_classes=7), tmp_path / "user7.onnx")
    with pytest.raises(EdgemapError, match="needs --preprocess"):
        run_map(options(str(onnx_path), tmp_path / "m"))
    with pytest.raises(EdgemapError, match="do not agree"):
        run_map(options(str(onnx_path), tmp_path / "m", preprocess="cifar10"))


BF16 = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


@pytest.mark.skipif(not BF16, reason="this CPU has no bfloat16 kernels")
def test_pruned_candidates_fine_tune_in_the_asked_precision_and_the_recipe_says_so(tiny_ckpt, tiny_npz, tmp_path):
    import yaml

    summary = run_map(options(tiny_ckpt, tmp_path / "m", trials=2, precisions=("fp32",), prune_ratios=(0.0, 0.5),
                              train_data=tiny_npz, finetune_epochs=1, finetune_precision="bf16"))
    states = list((tmp_path / "m" / "cache").rglob("state/prune_final/state.json"))
    assert len(states) == 1 and json.loads(states[0].read_text())["config"]["precision"] == "bf16"
    assert {t.candidate.prune_ratio for t in summary.trials} == {0.0, 0.5}
    recipe = yaml.safe_load(open(summary.recipe))
    pruning = [p for p in recipe["passes"] if p["type"] == "prune_channels"]
    assert all(p["precision"] == "bf16" for p in pruning)


def test_unknown_fine_tuning_precision_is_refused_before_any_work(tiny_ckpt, tmp_path):
    from edgemap.errors import EdgemapError

    with pytest.raises(EdgemapError, match="--finetune-precision must be one of fp32, bf16, got 'fp16'"):
        options(tiny_ckpt, tmp_path / "m", finetune_precision="fp16")
    assert not (tmp_path / "m").exists()


def test_compare_peers_builds_scores_and_times_the_peers_in_the_same_run(tiny_ckpt, tmp_path, capsys):
    summary = run_map(options(tiny_ckpt, tmp_path / "m", trials=2, precisions=("int8",), calibrations=("minmax",),
                              compare_peers=True))
    peers = {p["name"]: p for p in summary.peers["peers"]}
    assert set(peers) == {"ort_olive_int8", "nncf_ort_int8", "nncf_openvino_int8"}
    built = [p for p in peers.values() if "error" not in p]
    assert peers["ort_olive_int8"] in built  # ONNX Runtime is always here
    for p in built:  # scored on the map's images, timed in the same isolated run as the chosen mapping
        assert 0 <= p["accuracy"] <= 100 and p["timing"]["p50_ms"] > 0 and f"peer:{p['name']}" in summary.comparison
        assert p["accuracy_drop"] == pytest.approx(summary.baseline_accuracy - p["accuracy"], abs=0.01)
    assert summary.peers["best_peer"] in peers
    out = " ".join(capsys.readouterr().out.split())
    assert "chosen vs the best peer:" in out and "peer ort_olive_int8 (onnxruntime): top-1" in out
    results = json.loads((tmp_path / "m" / "results.json").read_text())
    assert results["peers"]["best_peer"] == summary.peers["best_peer"]
