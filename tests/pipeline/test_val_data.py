"""A recipe's data.val: validation images that judge pruning's fine-tuning, in the model's class order, in the data key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgemap.errors import EdgemapError
from edgemap.pipeline.context import data_key, data_section, recipe_context


def _npz(path: Path, n: int, size: int = 32, classes: int = 10) -> Path:
    rng = np.random.default_rng(n)
    np.savez(path, images=rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8),
             labels=(np.arange(n) % classes).astype(np.uint8))
    return path


def test_validation_images_reach_the_pass_context_and_the_data_key(tmp_path: Path) -> None:
    ev, train, val = _npz(tmp_path / "eval.npz", 20), _npz(tmp_path / "train.npz", 30), _npz(tmp_path / "val.npz", 12)
    plain = {"data": {"eval": str(ev), "train": str(train)}}
    with_val = {"data": {"eval": str(ev), "train": str(train), "val": str(val)}}
    assert data_section(with_val) == data_section(plain)  # eval, train, classes as before
    assert data_key(with_val) != data_key(plain)  # a pruned model judged on other images is another artifact
    ctx, _ = recipe_context(with_val)
    assert ctx.val_set is not None and len(ctx.val_set) == 12 and recipe_context(plain)[0].val_set is None
    _npz(val, 12, size=16)  # rewritten at the same path, other image size: refused in one line
    with pytest.raises(EdgemapError, match="validation images are 16x16x3"):
        recipe_context(with_val)
    with pytest.raises(EdgemapError, match="takes eval, train, val and classes"):
        data_section({"data": {"eval": str(ev), "valid": str(val)}})
