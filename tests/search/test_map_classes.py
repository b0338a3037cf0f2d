"""`edgemap map` on a model whose class order is not the folder's: the hint, --classes, the recipe and the bundle."""

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml

from edgemap.deploy.edge import EdgeModel
from edgemap.errors import EdgemapError
from edgemap.search.mapper import MapOptions, run_map
from edgemap.search.replay import run_recipe_file
from edgemap.search.strategy import Constraints

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from test_classes import write_folder  # noqa: E402
from test_compat import colour_data, colour_model  # noqa: E402


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    root = tmp_path_factory.mktemp("colours")
    colour_model(root / "c.onnx", size=8)  # outputs: red, green, blue; the folder sorts blue, green, red
    return root / "c.onnx", write_folder(root / "images", colour_data(n=60, classes=("red", "green", "blue")))


def options(model, folder, out, **kw):
    return MapOptions(model=model, preprocess="unit", eval_data=folder, train_data=folder, out_dir=out, trials=1,
                      backends=("onnxruntime",), precisions=("fp32",), threads=(1,), latency_runs=10, progress=False,
                      constraints=Constraints(max_accuracy_drop=100.0), timing_rounds=1, **kw)


def test_map_hints_the_classes_flag_and_with_it_records_the_order_in_recipe_and_bundle(colours, tmp_path, capsys):
    model, folder = colours
    wrong = run_map(options(model, folder, tmp_path / "wrong"))
    assert wrong.baseline_accuracy == pytest.approx(100 / 3, abs=0.1)
    assert "re-run with --classes red,green,blue" in " ".join(capsys.readouterr().err.split())
    right = run_map(options(model, folder, tmp_path / "right", class_names=("red", "green", "blue")))
    assert right.baseline_accuracy == 100.0 and right.chosen.accuracy == 100.0
    recipe = yaml.safe_load(Path(right.recipe).read_text())
    assert recipe["data"]["classes"] == ["red", "green", "blue"]
    manifest = json.loads((Path(right.bundle) / "manifest.json").read_text())
    assert manifest["class_names"] == ["red", "green", "blue"]
    red = np.full((1, 8, 8, 3), 30, np.uint8)
    red[..., 0] = 220
    assert EdgeModel(right.bundle).classify(red)[0].labels[0] == "red"
    assert run_recipe_file(right.recipe, tmp_path / "replay")["accuracy"] == 100.0  # the replay relabels alike


def test_names_the_model_carries_are_used_and_a_foreign_folder_is_one_line(colours, tmp_path):
    model, folder = colours
    named = onnx.load(model)
    from edgemap.data.classes import set_onnx_class_names

    set_onnx_class_names(named, ("red", "green", "blue"))
    onnx.save(named, tmp_path / "named.onnx")
    summary = run_map(options(tmp_path / "named.onnx", folder, tmp_path / "m"))
    assert summary.baseline_accuracy == 100.0
    with pytest.raises(EdgemapError) as err:
        run_map(options(model, folder, tmp_path / "x", class_names=("red", "green", "navy")))
    assert "\n" not in str(err.value) and "the data has 'blue' that the model does not know" in str(err.value)
    with pytest.raises(EdgemapError, match="name 2 classes, the model outputs 3 scores"):
        run_map(options(model, folder, tmp_path / "y", class_names=("red", "green")))
