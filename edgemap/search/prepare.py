"""What a search needs before its first trial: the preprocessed evaluation arrays and the self-test images.

The data split (split_data) lives in edgemap.pipeline.context, shared with `edgemap run`; pruning and
fine-tuning are recipe passes (edgemap.compress.prune, edgemap.pipeline.user_prune)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgemap.core.atomic import atomic_path
from edgemap.data.preprocess import PreprocessSpec
from edgemap.pipeline.context import HOLDOUT_SEED, SAMPLE_CALIBRATION, SearchData, split_data  # noqa: F401 - re-exported
from edgemap.pipeline.user_prune import FINETUNE_LR, FINETUNE_LR_NO_BN, finetune_lr  # noqa: F401 - re-exported


def write_arrays(work: Path, data: SearchData, spec: PreprocessSpec) -> Path:
    """Preprocessed eval inputs (.npz with x, labels, lossless) and the bundle's self-test images, written atomically.
    (Calibration images are drawn by the passes themselves, from the recipe's data: edgemap.pipeline.context.)"""
    work.mkdir(parents=True, exist_ok=True)
    eval_npz = work / "eval.npz"
    with atomic_path(eval_npz) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, x=spec.apply(data.eval_set.images), labels=data.eval_set.labels, lossless=data.eval_set.lossless)
    with atomic_path(work / "selftest_images.npy") as tmp:  # raw images: the bundle's self-test preprocesses them itself
        with open(tmp, "wb") as f:
            np.save(f, data.eval_set.images[:16])
    return eval_npz
