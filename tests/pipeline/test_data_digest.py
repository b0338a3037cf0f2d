"""The cache key's data part covers what the data files hold: a data set changed at the same path is new data (its
passes run again, a search gets a new study), and the content hash is computed once per listing."""

from __future__ import annotations

import os

import numpy as np

from edgemap.pipeline import data_digest as dd
from edgemap.pipeline.context import data_key, load_data, recipe_context
from edgemap.pipeline.recipe import build


def _images(path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    np.savez(path, images=rng.integers(0, 256, (48, 32, 32, 3), dtype=np.uint8), labels=(np.arange(48) % 10).astype(np.uint8))


def _tiny_onnx(path) -> None:
    """Conv -> ReLU -> pool -> Gemm, 3x32x32 -> 10, written directly (no export: the test is about the data)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(0, 0.3, (10, 8)).astype(np.float32), "fc")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 10])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_a_data_set_rewritten_at_the_same_path_is_new_data_and_its_passes_run_again(tmp_path):
    from edgemap.data.preprocess import parse_preprocess

    _tiny_onnx(tmp_path / "tiny.onnx")
    train = tmp_path / "calib.npz"
    _images(train, 0)
    recipe = {"schema": 2, "model": {"path": str(tmp_path / "tiny.onnx")}, "preprocess": parse_preprocess("cifar10").to_dict(),
              "data": {"eval": str(train), "train": str(train)},
              "passes": [{"type": "quantize_static", "calibration": "minmax", "samples": 16}]}

    def run(out: str):  # noqa: ANN202 - Built
        ctx, _ = recipe_context(recipe, parity_n=16)
        return build(recipe, tmp_path / out, ctx, tmp_path / "cache")

    first, key = run("a"), data_key(recipe)
    again = run("b")
    assert again.cached == [True] and again.artifact.sha256 == first.artifact.sha256
    _images(train, 1)  # same path, other images
    assert data_key(recipe) != key
    assert load_data(str(train), str(train)).calib_set.images[0].tobytes() == np.load(train)["images"][0].tobytes()
    changed = run("c")
    assert changed.cached == [False]  # calibrated on the new images: built again, not taken from the cache
    assert changed.artifact.sha256 != first.artifact.sha256


def test_the_content_hash_is_computed_once_per_listing_and_kept_between_processes(tmp_path, monkeypatch):
    folder = tmp_path / "folder" / "cat"
    folder.mkdir(parents=True)
    (folder / "a.png").write_bytes(b"one")
    monkeypatch.setenv("EDGEMAP_DIGEST_CACHE", str(tmp_path / "digests.json"))
    hashed = []
    real = dd._content_digest
    monkeypatch.setattr(dd, "_content_digest", lambda p, files: hashed.append(p) or real(p, files))
    first = dd.data_digest(tmp_path / "folder")
    dd._MEMO.clear()  # as a new process: the digest comes from the JSON file, nothing is read again
    assert dd.data_digest(tmp_path / "folder") == first and len(hashed) == 1
    (folder / "a.png").write_bytes(b"two")  # same size, new contents and modification time
    os.utime(folder / "a.png", ns=(1, 1))
    assert dd.data_digest(tmp_path / "folder") != first and len(hashed) == 2
    dd.known({"/nowhere/data": "0123456789abcdef"})  # a Ray worker: the driver's digest stands for files it lacks
    assert dd.data_digest("/nowhere/data") == "0123456789abcdef"
