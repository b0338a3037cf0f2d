"""Agreement checks and the sanity evaluation, on a hand-made colour classifier whose right answer is known."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgemap.data.compat import check_agreement, near_chance, predict, require_agreement, sanity_eval
from edgemap.data.dataset import ImageSet
from edgemap.data.preprocess import PreprocessSpec, parse_preprocess
from edgemap.errors import EdgemapError
from edgemap.models.sources import load_user_model


def colour_model(path, batch="N", size=8):
    """logits = mean of each input channel: class 0 = red, 1 = green, 2 = blue images."""
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"]), helper.make_node("Flatten", ["g"], ["y"])]
    graph = helper.make_graph(nodes, "colour", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return load_user_model(path)


def colour_data(n=30, size=8, classes=("red", "green", "blue")):
    rng = np.random.default_rng(0)
    labels = np.arange(n) % len(classes)
    images = rng.integers(20, 60, (n, size, size, 3)).astype(np.uint8)
    images[np.arange(n), :, :, labels % 3] += 150
    return ImageSet(images, labels.astype(np.int64), tuple(classes), "colours")


def test_matching_model_data_and_preprocessing_agree(tmp_path):
    model = colour_model(tmp_path / "c.onnx")
    a = check_agreement(model.info, colour_data(), parse_preprocess("cifar10"))
    assert a.ok and a.produced == (3, 8, 8)
    assert a.notes[0].startswith("range: after preprocessing the values span [")


def test_every_disagreement_is_named_with_its_fix(tmp_path):
    info = colour_model(tmp_path / "c.onnx").info
    data = colour_data(size=10, classes=("red", "green", "blue", "grey"))
    a = check_agreement(info, data, PreprocessSpec(channels="gray", layout="nhwc"))
    assert a.problems == (
        "layout: the model takes NCHW input (3, 8, 8), preprocessing makes NHWC (10, 10, 1): set layout=nchw",
        "channels: the model takes 3 channel(s), preprocessing makes 1 (channels=gray): set channels=rgb (or bgr)",
        "size: the model takes 8x8 images, the images are 10x10: set resize=8x8",
        "classes: the model outputs 3 scores, the data has 4 classes (red, green, blue, grey)",
    )
    with pytest.raises(EdgemapError) as err:
        require_agreement(info, data, PreprocessSpec(resize=(9, 9)))
    msg = str(err.value)
    assert "\n" not in msg and "do not agree: size: the model takes 8x8 images, preprocessing resizes to 9x9" in msg
    assert check_agreement(info, colour_data(size=10), PreprocessSpec(resize=(8, 8))).ok


def test_value_range_without_scale_is_flagged(tmp_path):
    info = colour_model(tmp_path / "c.onnx").info
    notes = check_agreement(info, colour_data(), parse_preprocess("raw")).notes
    assert any("values reach 255; most models take about [0, 1]" in n and "scale=1/255 missing" in n for n in notes)


def test_sanity_eval_passes_a_good_setup_and_diagnoses_swapped_channels(tmp_path):
    model = colour_model(tmp_path / "c.onnx")
    data = colour_data()
    with model.session() as sess:
        good = sanity_eval(sess, data, PreprocessSpec())
        bad = sanity_eval(sess, data, PreprocessSpec(channels="bgr"))
    assert good.top1 == 100.0 and good.hint is None and good.n == 30
    assert bad.top1 == pytest.approx(100 / 3) and bad.chance == pytest.approx(100 / 3)
    assert bad.hint.startswith("accuracy 33 % is near chance (33 %): check mean/std, scale, channel order")
    assert "with channels=rgb the accuracy is 100 % on 30 images" in bad.hint


def test_fixed_batch_models_get_padded_batches(tmp_path):
    model = colour_model(tmp_path / "fixed.onnx", batch=4)
    assert model.info.fixed_batch == 4
    data = colour_data(n=10)
    with model.session() as sess:
        logits = predict(sess, data.images, PreprocessSpec(), fixed_batch=4)
    assert logits.shape == (10, 3) and (logits.argmax(1) == data.labels).all()


def test_near_chance_threshold():
    assert near_chance(18.9, 10) and not near_chance(19.1, 10)
    assert near_chance(54, 50) and not near_chance(56, 50)
