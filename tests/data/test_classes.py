"""Class names and order: --classes/--labels, names carried by ONNX files and checkpoints, folders in
another order than the model (caught, and fixed by the printed --classes hint)."""

import subprocess
import sys

import numpy as np
import onnx
import pytest
from PIL import Image

from edgemap.data.classes import (align_to_model, check_permutation, class_names_option, onnx_class_names,
                                  parse_class_list, permutation_hint, read_labels_file, set_onnx_class_names)
from edgemap.data.dataset import ImageSet
from edgemap.errors import EdgemapError

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from test_compat import colour_data, colour_model  # noqa: E402


def edgemap(*args):
    return subprocess.run([sys.executable, "-m", "edgemap.cli", *args], capture_output=True, text=True, timeout=300)


def write_folder(root, data):
    for i, (img, label) in enumerate(zip(data.images, data.labels)):
        d = root / data.class_names[label]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{i}.png")
    return root


def test_class_lists_from_the_command_line_and_a_labels_file(tmp_path):
    assert parse_class_list(" t-shirt, trouser ,bag") == ("t-shirt", "trouser", "bag")
    f = tmp_path / "labels.txt"
    f.write_text("cat\n\n dog \nbird\n")
    assert read_labels_file(f) == ("cat", "dog", "bird") == class_names_option(None, f)
    assert class_names_option(None, None) is None
    for bad, msg in ((lambda: parse_class_list("a,,b"), "must be non-empty"),
                     (lambda: parse_class_list("a,b,a"), "given twice: a"),
                     (lambda: class_names_option("a,b", f), "--classes or --labels, not both"),
                     (lambda: read_labels_file(tmp_path / "none.txt"), "labels file not found")):
        with pytest.raises(EdgemapError, match=msg):
            bad()


def test_onnx_files_carry_their_class_order(tmp_path):
    colour_model(tmp_path / "c.onnx")
    assert onnx_class_names(tmp_path / "c.onnx") is None
    model = onnx.load(tmp_path / "c.onnx")
    set_onnx_class_names(model, ("blue", "green", "red"))
    set_onnx_class_names(model, ("red", "green", "blue"))  # replaces, never two entries
    onnx.save(model, tmp_path / "named.onnx")
    assert onnx_class_names(tmp_path / "named.onnx") == ("red", "green", "blue")
    assert [p.key for p in onnx.load(tmp_path / "named.onnx").metadata_props] == ["class_names"]
    model.metadata_props[0].value = "[not json"
    onnx.save(model, tmp_path / "bad.onnx")
    with pytest.raises(EdgemapError, match="not a JSON list of class names"):
        onnx_class_names(tmp_path / "bad.onnx")


def test_data_is_relabelled_into_the_model_order_by_name_and_foreign_names_are_named():
    data = colour_data(n=6, classes=("blue", "green", "red"))  # label 0 = blue
    aligned = align_to_model(data, ("red", "green", "blue"))
    assert aligned.class_names == ("red", "green", "blue")
    assert [aligned.class_names[y] for y in aligned.labels] == [data.class_names[y] for y in data.labels]
    part = ImageSet(data.images[:2], np.array([0, 1]), ("green", "red"), "two classes")
    assert align_to_model(part, ("red", "green", "blue")).labels.tolist() == [1, 0]  # a subset is fine
    with pytest.raises(EdgemapError) as err:
        align_to_model(ImageSet(data.images, data.labels % 3, ("blue", "green", "magenta"), "folder"),
                       ("red", "green", "blue"), "m.onnx")
    msg = str(err.value)
    assert "\n" not in msg and "the data has 'magenta' that m.onnx does not know, and lacks 'red'" in msg


def test_a_permutation_that_explains_the_predictions_is_found_and_spelled_as_classes():
    names = ("a", "b", "c", "d")
    data = ImageSet(np.zeros((40, 2, 2, 3), np.uint8), np.arange(40) % 4, names, "x")
    truth = np.array([1, 0, 2, 3])  # the model's output 0 is class b, output 1 is a
    predictions = truth[data.labels].copy()
    predictions[:4] = data.labels[:4]  # a few errors, so it is not a clean swap
    check = check_permutation(np.eye(4, dtype=int)[data.labels].T @ np.eye(4, dtype=int)[predictions], names)
    assert check.top1 == pytest.approx(55.0) and check.permuted_top1 == pytest.approx(95.0)
    assert check.classes == ("b", "a", "c", "d") and check.explains
    assert permutation_hint(predictions, data).endswith("re-run with --classes b,a,c,d")
    assert permutation_hint(data.labels, data) is None  # right order: nothing to say
    noise = np.random.default_rng(0).integers(0, 4, 400)  # a model that knows nothing: no reordering helps
    many = ImageSet(np.zeros((400, 2, 2, 3), np.uint8), np.arange(400) % 4, names, "x")
    assert permutation_hint(noise, many) is None


def test_folder_in_another_order_is_caught_and_fixed_by_the_printed_hint(tmp_path):
    colour_model(tmp_path / "c.onnx", size=8)  # outputs: red, green, blue
    folder = write_folder(tmp_path / "images", colour_data(n=30, classes=("red", "green", "blue")))  # sorts blue..red
    r = edgemap("eval", str(tmp_path / "c.onnx"), "--data", str(folder), "--preprocess", "unit", "--no-confusion")
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert "top-1 33.33% on 30 images" in out and "re-run with --classes red,green,blue" in out
    r = edgemap("eval", str(tmp_path / "c.onnx"), "--data", str(folder), "--preprocess", "unit", "--no-confusion",
                "--classes", "red,green,blue")
    assert r.returncode == 0, r.stderr
    assert "top-1 100.00% on 30 images" in " ".join(r.stdout.split())
    labels = tmp_path / "labels.txt"
    labels.write_text("red\ngreen\nblue\n")
    r = edgemap("eval", str(tmp_path / "c.onnx"), "--data", str(folder), "--preprocess", "unit", "--labels", str(labels))
    assert r.returncode == 0 and "top-1 100.00% on 30 images" in " ".join(r.stdout.split())


def test_names_carried_by_the_model_are_used_and_foreign_folders_refused(tmp_path):
    colour_model(tmp_path / "c.onnx", size=8)
    model = onnx.load(tmp_path / "c.onnx")
    set_onnx_class_names(model, ("red", "green", "blue"))
    onnx.save(model, tmp_path / "named.onnx")
    folder = write_folder(tmp_path / "images", colour_data(n=30, classes=("red", "green", "blue")))
    r = edgemap("eval", str(tmp_path / "named.onnx"), "--data", str(folder), "--preprocess", "unit", "--no-confusion")
    assert r.returncode == 0 and "top-1 100.00% on 30 images" in " ".join(r.stdout.split())
    (folder / "blue").rename(folder / "navy")
    r = edgemap("eval", str(tmp_path / "named.onnx"), "--data", str(folder), "--preprocess", "unit")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "the data has 'navy' that named.onnx does not know, and lacks 'blue'" in r.stderr
    r = edgemap("eval", str(tmp_path / "named.onnx"), "--data", str(folder), "--preprocess", "unit", "--classes", "a,b")
    assert r.returncode == 2 and "--classes names 2 classes, the model outputs 3 scores" in r.stderr


def test_train_records_the_given_order_and_eval_matches_data_to_it(tmp_path, tiny_npz):
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "test"):
        (data / f"cifar10_{split}.npz").write_bytes(tiny_npz.read_bytes())
    order = ("truck", "ship", "horse", "frog", "dog", "deer", "cat", "bird", "automobile", "airplane")
    out = tmp_path / "m.safetensors"
    r = edgemap("train", "--model", "tiny", "--epochs", "1", "--batch-size", "8", "--threads", "1", "--data", str(data),
                "--out", str(out), "--classes", ",".join(order))
    assert r.returncode == 0, r.stderr
    from edgemap.models.checkpoint import load_checkpoint

    assert load_checkpoint(out)[1].class_names == order
    r = edgemap("eval", str(out), "--data", str(data / "cifar10_test.npz"), "--no-confusion")
    assert r.returncode == 0, r.stderr
    r = edgemap("eval", str(out), "--data", str(data / "cifar10_test.npz"), "--classes", "a,b,c,d,e,f,g,h,i,j")
    assert r.returncode == 2 and "the data has 'airplane'" in r.stderr
