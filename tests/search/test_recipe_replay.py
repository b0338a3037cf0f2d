"""Every mapping the declarations allow is a recipe, and `edgemap run` rebuilds it: same file (sha256) for
deterministic passes, the recorded accuracy where fine-tuned. Parametrised over the registries, so a new
backend, precision or calibration is tested by being declared."""

from __future__ import annotations

import textwrap

import pytest
import torch
import yaml
from safetensors.torch import save_file
from torch import nn

from edgemap.core import passes
from edgemap.models import zoo
from edgemap.models.checkpoint import CheckpointInfo, save_checkpoint
from edgemap.runtime.registry import CAPABILITIES, available_backends
from edgemap.search.mapper import MapOptions, run_map
from edgemap.search.replay import run_recipe_file
from edgemap.search.space import BACKENDS, SearchSpace
from edgemap.search.strategy import Constraints

INSTALLED = tuple(b for b in BACKENDS if available_backends()[b])


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return save_checkpoint(zoo.build("tiny"), CheckpointInfo(architecture="tiny"), path)


def declared_candidates(source_format: str) -> list:
    """Every backend x precision x calibration the declarations allow for this source, unpruned, one thread."""
    space = SearchSpace(prune_ratios=(0.0,), backends=INSTALLED, threads=(1,), source_format=source_format)
    return space.grid()


def test_the_declarations_remove_what_no_backend_runs_with_its_reason():
    space = SearchSpace(prune_ratios=(0.0,), backends=INSTALLED, threads=(1,), source_format="checkpoint")
    skipped = space.skipped()
    if "litert" in INSTALLED:
        assert "litert runs fp32, int8, not fp16" in skipped["p0-fp16-litert-t1"]
        assert "calibrates with minmax only" in skipped["p0-int8-entropy-litert-t1"]
    for c in space.grid():  # what remains: the backend declares it
        assert c.precision in CAPABILITIES[c.backend].precisions


def test_a_device_profile_can_restrict_a_backends_precisions(tiny_ckpt):
    from edgemap.devices.catalogue import resolve
    from edgemap.search.mapper import build_space

    profile = resolve("rpi5").model_copy(update={"backends": {"litert": ["fp32"]}})
    space = build_space(MapOptions(model=tiny_ckpt, prune_ratios=(0.0,), threads=(1,)), profile, can_prune=False,
                        source_format="checkpoint")
    assert not any(c.backend == "litert" and c.precision == "int8" for c in space.grid())
    if "litert" in INSTALLED:
        assert "no int8 support in litert" in space.skipped()["p0-int8-minmax-litert-t1"]


@pytest.mark.parametrize("cand", declared_candidates("checkpoint"), ids=lambda c: c.artifact_key())
def test_every_declared_mapping_rebuilds_to_the_same_file(cand, tiny_ckpt, tmp_path):
    from edgemap.search.compile import BuildSettings, candidate_recipe
    from edgemap.search.evaluate import build_candidate
    from edgemap.search.records import SearchContext

    base = {"schema": 2, "model": {"path": str(tiny_ckpt)}, "data": {"eval": "shipped-sample", "train": None}}
    ctx = SearchContext(recipe=base, settings=BuildSettings(calib_samples=64), work_dir=str(tmp_path / "w"),
                        cache_dir=str(tmp_path / "search-cache"), eval_npz="", parity_n=64)
    built = build_candidate(ctx, cand)  # what the search builds and measures
    assert built.artifact.format == CAPABILITIES[cand.backend].format and built.artifact.precision == cand.precision
    recipe = {**candidate_recipe(base, cand, BuildSettings(calib_samples=64)),
              "expected": {"sha256": built.artifact.sha256}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    replay = run_recipe_file(path, tmp_path / "run")  # a fresh cache: every pass runs again
    assert replay["same_file"], f"{cand.key()}: {replay['sha256']} != {built.artifact.sha256}"
    assert replay["selftest"]["top1_agreement"] == 1.0
    assert [a["made_by"].get("type") for a in replay["artifacts"][1:]] == [p["type"] for p in recipe["passes"]]


# --- map -> recipe.yaml -> edgemap run, for each kind of model source -------------------------------------------

PLAIN_NET = textwrap.dedent('''
    import torch
    from torch import nn

    class Plain(nn.Module):
        """No BatchNorm, 8 convolutions: what a user exports from another training code."""
        def __init__(self):
            super().__init__()
            layers, c = [], 3
            for w in (8, 8, 16, 16, 16, 16, 16, 16):
                layers += [nn.Conv2d(c, w, 3, padding=1), nn.ReLU()]
                c = w
            self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))

        def forward(self, x):
            return self.body(x)

    def build():
        return Plain()
''')


def _plain(tmp_path):
    path = tmp_path / "plainnet.py"
    path.write_text(PLAIN_NET)
    namespace: dict = {}
    exec(compile(PLAIN_NET, str(path), "exec"), namespace)
    torch.manual_seed(0)
    return path, namespace["build"]().eval()


def _source(kind: str, tmp_path, tiny_ckpt) -> dict:
    """The map options naming a model of this kind."""
    if kind == "onnx":
        from edgemap.convert.onnx_export import export_onnx

        torch.manual_seed(0)
        return {"model": str(export_onnx(zoo.build("tiny"), tmp_path / "user.onnx")), "preprocess": "cifar10"}
    path, module = _plain(tmp_path)
    if kind == "pt2":  # saved at a fixed batch of 1, as torch.export users do by default
        program = torch.export.export(module, (torch.randn(1, 3, 32, 32),))
        torch.export.save(program, tmp_path / "net.pt2")
        return {"model": str(tmp_path / "net.pt2"), "preprocess": "cifar10"}
    save_file(module.state_dict(), tmp_path / "plain.safetensors")
    return {"model": f"{path}:build", "weights": tmp_path / "plain.safetensors", "preprocess": "cifar10"}


CASES = [  # (source kind, backend, precision, pruned)
    ("onnx", "onnxruntime", "int8", False),
    ("onnx", "onnxruntime", "fp32", True),
    ("pt2", "litert", "int8", False),
    ("entry_point", "openvino", "int8", False),
]  # FP16 (not run by the host profile's CPU) is in the declarations test above, on every backend that declares it


def test_the_map_cases_cover_every_registered_model_source():
    """A source added to the registry must be mapped and replayed here (checkpoints: the declarations test above
    and tests/search/test_map.py; the shipped model is a checkpoint by name)."""
    assert {s.kind for s in passes.sources()} - {"shipped", "checkpoint"} <= {kind for kind, *_ in CASES}


@pytest.mark.parametrize("kind, backend, precision, pruned", CASES, ids=lambda v: str(v))
def test_map_writes_the_recipe_it_built_and_edgemap_run_rebuilds_it(kind, backend, precision, pruned, tiny_ckpt,
                                                                    tiny_npz, tmp_path):
    if backend not in INSTALLED:
        pytest.skip(f"{backend} is not installed")
    extra = dict(prune_ratios=(0.5,), train_data=tiny_npz, finetune_epochs=1) if pruned else {}
    opts = MapOptions(**_source(kind, tmp_path, tiny_ckpt), out_dir=tmp_path / "m", trials=1, backends=(backend,),
                      precisions=(precision,), calibrations=("minmax",), threads=(1,), latency_runs=5, calib_samples=64,
                      progress=False, constraints=Constraints(max_accuracy_drop=100.0), timing_rounds=1, **extra)
    summary = run_map(opts)
    chosen = summary.chosen
    assert chosen is not None and chosen.candidate.backend == backend
    recipe = yaml.safe_load(open(summary.recipe))
    assert recipe["schema"] == 2 and all(passes.spec(p["type"]).run for p in recipe["passes"])
    assert not any(p["type"] == "convert" for p in recipe["passes"])
    if pruned:
        assert recipe["passes"][0]["type"] == "prune_user_model" and recipe["passes"][0]["round_to"] == 8
    replay = run_recipe_file(summary.recipe, tmp_path / "run")
    if replay["deterministic"]:
        assert replay["same_file"], f"{chosen.key}: the replay built another file"
    assert replay["accuracy"] == pytest.approx(chosen.accuracy, abs=0.2)
    assert replay["selftest"]["top1_agreement"] == 1.0


@pytest.mark.parametrize("recipe, words", [
    ({"schema": 3, "model": {"path": "x.onnx"}, "passes": []}, "schema 3; this edgemap reads up to 2"),
    ({"schema": 2, "model": {"path": "x.onnx"}, "passes": [], "colour": 1}, "unknown field(s) colour"),
    ({"schema": 2, "model": {"path": "missing.onnx"}, "passes": []}, "model file not found"),
    ({"schema": 2, "model": {"path": "TINY"}, "passes": [{"type": "no_such_pass"}]}, "unknown pass type"),
    ({"schema": 2, "model": {"path": "TINY"}, "passes": [{"type": "export_onnx", "speed": 2}]}, "unknown option"),
    ({"schema": 2, "model": {"path": "TINY"}, "passes": [{"type": "convert", "to": "openvino"}]}, "{type: convert}"),
    ({"schema": 2, "model": {"path": "TINY"}, "passes": [{"type": "convert_openvino"}]}, "takes onnx, but gets checkpoint"),
])
def test_bad_recipes_fail_with_one_line_before_running(recipe, words, tiny_ckpt, tmp_path, monkeypatch, run_cli):
    recipe = yaml.safe_load(yaml.safe_dump(recipe).replace("TINY", str(tiny_ckpt)))
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    monkeypatch.chdir(tmp_path)  # the recipe's relative paths
    status, _, err = run_cli("run", str(path), "--out", str(tmp_path / "o"))
    assert status == 2 and err.count("\n") == 1, err
    assert words in err and "Traceback" not in err
