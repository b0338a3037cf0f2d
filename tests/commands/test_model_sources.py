"""Every command that takes a model takes every source the registry knows, parametrised over the registry (a new
source is tested by being registered): `edgemap eval`, `compress quantize` and `estimate` here, from the command
line; `convert` and the ONNX export every command reads in tests/models/test_source_registry.py; `map` -> recipe ->
`edgemap run` per kind in tests/search/test_recipe_replay.py (which checks that it covers every kind)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from edgemap.cli import app
from edgemap.core import passes
from edgemap.models.sources.loaders import model_ref
from tests.models.test_source_registry import KINDS, make_source


@pytest.mark.parametrize("kind", KINDS)
def test_eval_compress_and_estimate_take_every_registered_source(kind, tmp_path):
    model, weights = make_source(kind, tmp_path)
    assert passes.source_for(model_ref(model, weights)).kind == kind  # the registry names it as the test means
    source = [model] + (["--weights", weights] if weights else [])
    calls = {"eval": ["eval", *source, "--limit", "64", "--sanity", "32", "--no-confusion"]
             + ([] if kind == "checkpoint" else ["--preprocess", "cifar10"]),
             "compress quantize": ["compress", "quantize", *source, "--mode", "dynamic", "--out", str(tmp_path / "q.onnx")],
             "estimate": ["estimate", *source, "--device", "rpi4", "--json"]}
    runner = CliRunner()
    out = {}
    for name, args in calls.items():
        result = runner.invoke(app, args)  # (no --store here: in this process it would switch the store off for later tests)
        assert result.exit_code == 0, f"{name} {kind}: {result.output[-600:]} {result.exception!r}"
        out[name] = result.output
    assert "top-1" in out["eval"].lower() and (tmp_path / "q.onnx").is_file()
    estimate = json.JSONDecoder().raw_decode(out["estimate"][out["estimate"].index("{"):])[0]  # then the "recorded run" note
    assert estimate["latency_s"]["value"] > 0
