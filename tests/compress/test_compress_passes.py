"""The pass registry and recipes: configs by type name, validation, format chaining."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgemap.compress.prune import PruneChannels
from edgemap.compress.quantize import QuantizeStatic
from edgemap.pipeline.recipe import plan, run_recipe
from edgemap.core import passes
from edgemap.errors import EdgemapError


def test_config_round_trip_through_the_registry() -> None:
    cfg = passes.config_from_dict({"type": "quantize_static", "calibration": "entropy", "exclude": ["a", "b"]})
    assert cfg == QuantizeStatic(calibration="entropy", exclude=("a", "b"))
    assert passes.config_from_dict(passes.config_to_dict(cfg)) == cfg


def test_every_documented_pass_is_registered() -> None:
    passes.ensure_loaded()
    assert {"prune_channels", "prune_magnitude", "quantize_static", "quantize_dynamic", "quantize_fp16", "qat",
            "distill", "export_onnx"} <= set(passes.names())
    assert all(passes.spec(n).run is not None for n in passes.names())


@pytest.mark.parametrize("entry, words", [
    ({"type": "no_such_pass"}, "unknown pass type"),
    ({"type": "prune_channels", "ratio": 0.5, "speed": 3}, "unknown option"),
    ({"ratio": 0.5}, "'type' key"),
    ({"type": "prune_channels", "ratio": 1.0}, "(0, 1)"),
    ({"type": "prune_channels", "ratio": 0.0}, "(0, 1)"),
    ({"type": "prune_channels", "ratio": -0.2}, "(0, 1)"),
    ({"type": "prune_channels", "ratio": 0.5, "target_macs": 1000}, "exactly one"),
    ({"type": "prune_magnitude", "sparsity": 1.5}, "(0, 1)"),
    ({"type": "quantize_static", "calibration": "kl"}, "calibration"),
])
def test_bad_configs_fail_with_a_clear_error(entry: dict, words: str) -> None:
    with pytest.raises(EdgemapError, match=words.replace("(", r"\(").replace(")", r"\)")):
        passes.config_from_dict(entry)


def test_recipe_formats_are_checked_before_running(tiny_ckpt: Path) -> None:
    recipe = {"model": {"path": str(tiny_ckpt)}, "passes": [{"type": "quantize_static"}]}
    with pytest.raises(EdgemapError, match="takes onnx, but gets checkpoint"):
        plan(recipe)
    _, configs = plan({"model": {"path": str(tiny_ckpt)},
                       "passes": [{"type": "prune_channels", "ratio": 0.5}, {"type": "export_onnx"}, {"type": "quantize_static"}]})
    assert isinstance(configs[0], PruneChannels)


def test_recipe_runs_prune_export_quantize(tiny_ckpt: Path, ctx, tmp_path: Path) -> None:  # noqa: ANN001
    recipe = {"model": {"path": str(tiny_ckpt)},
              "passes": [{"type": "prune_channels", "ratio": 0.5}, {"type": "export_onnx"},
                         {"type": "quantize_static", "samples": 32}]}
    reports = run_recipe(recipe, tmp_path / "out", ctx)
    assert [r.technique for r in reports] == ["prune_channels", "export_onnx", "quantize_static"]
    assert (tmp_path / "out" / "03_quantize_static.onnx").is_file()
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert len(saved["passes"]) == 3 and saved["passes"][2]["extra"]["int8"]["integer_ops"] > 0
