"""The cache key's data part covers what the data files hold: a data set changed at the same path is new data (its
passes run again, a search gets a new study), and the content hash is computed once per listing."""

from __future__ import annotations

import os

import numpy as np
import torch

from edgemap.models import zoo
from edgemap.models.checkpoint import CheckpointInfo, save_checkpoint
from edgemap.pipeline import data_digest as dd
from edgemap.pipeline.context import data_key, load_data, recipe_context
from edgemap.pipeline.recipe import build


def _images(path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    np.savez(path, images=rng.integers(0, 256, (48, 32, 32, 3), dtype=np.uint8), labels=(np.arange(48) % 10).astype(np.uint8))


def test_a_data_set_rewritten_at_the_same_path_is_new_data_and_its_passes_run_again(tmp_path):
    torch.manual_seed(0)
    ckpt = save_checkpoint(zoo.build("tiny"), CheckpointInfo(architecture="tiny"), tmp_path / "tiny.safetensors")
    train = tmp_path / "calib.npz"
    _images(train, 0)
    recipe = {"schema": 2, "model": {"path": str(ckpt)}, "data": {"eval": str(train), "train": str(train)},
              "passes": [{"type": "export_onnx"}, {"type": "quantize_static", "calibration": "minmax", "samples": 16}]}

    def run(out: str):  # noqa: ANN202 - Built
        ctx, _ = recipe_context(recipe, parity_n=16)
        return build(recipe, tmp_path / out, ctx, tmp_path / "cache")

    first, key = run("a"), data_key(recipe)
    again = run("b")
    assert again.cached == [True, True] and again.artifact.sha256 == first.artifact.sha256
    _images(train, 1)  # same path, other images
    assert data_key(recipe) != key
    assert load_data(str(train), str(train)).calib_set.images[0].tobytes() == np.load(train)["images"][0].tobytes()
    changed = run("c")
    assert changed.cached == [True, False]  # the export reads no data: kept; the calibrated INT8 is built again
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
