"""The data a recipe's passes see, built one way for a search's trials and for `edgemap run`.

A recipe's `data` section names the evaluation and training data; without training data a fixed,
seeded share of the evaluation images calibrates and the rest evaluates (split_data). The same
recipe therefore gives the same calibration images, and so the same INT8 file, wherever it runs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from edgemap.compress.context import PassContext
from edgemap.data.dataset import ImageSet
from edgemap.errors import EdgemapError

SAMPLE_CALIBRATION = 256  # when there is no training data, this many eval images calibrate, the rest evaluate
HOLDOUT_SEED = 0  # fixed, so `edgemap run` replays the same split


@dataclass
class SearchData:
    """The data sets of one search or replay and where they came from (printed, so the user knows what was measured)."""

    eval_set: ImageSet
    calib_set: ImageSet
    train_set: ImageSet | None
    note: str


def split_data(eval_set: ImageSet, train_set: ImageSet | None) -> SearchData:
    """Calibrate on training data when there is some; otherwise hold out SAMPLE_CALIBRATION random eval images.

    Random, not the first ones: an image folder lists its images class by class, so its first images would
    calibrate on one class and leave that class out of the evaluation."""
    if train_set is not None:
        return SearchData(eval_set, train_set, train_set, f"calibration and fine-tuning on {train_set.source}")
    if len(eval_set) < 2 * SAMPLE_CALIBRATION:
        raise EdgemapError(f"{eval_set.source}: {len(eval_set)} images are too few to both calibrate and evaluate "
                           f"(need {2 * SAMPLE_CALIBRATION}, or give training data)")
    held = np.zeros(len(eval_set), dtype=bool)
    held[np.random.default_rng(HOLDOUT_SEED).choice(len(eval_set), SAMPLE_CALIBRATION, replace=False)] = True
    calib, rest = eval_set.subset(held), eval_set.subset(~held)
    return SearchData(rest, calib, None, f"no training data: {SAMPLE_CALIBRATION} images of {eval_set.source} picked at "
                                          f"random (seed {HOLDOUT_SEED}) calibrate, the other {len(rest)} evaluate; pruning is off")


Classes = tuple[str, ...] | None
_PRELOADED: dict[tuple[str | None, str | None, Classes], SearchData] = {}


def preload(eval_ref: str | None, train_ref: str | None, classes: Classes, data: SearchData) -> None:
    """Serve `data` for this data section without reading files (a Ray worker on another machine gets the data
    through the object store, and the recipe's paths are the driver's)."""
    _PRELOADED[(_norm(eval_ref), train_ref, classes)] = data


def _norm(eval_ref: str | None) -> str | None:
    return None if eval_ref in (None, "shipped-sample") else eval_ref


def load_data(eval_ref: str | None, train_ref: str | None, classes: Classes = None) -> SearchData:
    """The recipe's data, loaded once per process while its files stay the same (a search's trials share it); with
    `classes` (the model's output order) every set is relabelled to that order by name, and data with other names is
    refused."""
    key = (_norm(eval_ref), train_ref, tuple(classes) if classes else None)
    if key in _PRELOADED:
        return _PRELOADED[key]
    from edgemap.pipeline.data_digest import data_digest

    contents = tuple(data_digest(r) for r in key[:2] if r)  # rewritten files: loaded again, not served from memory
    return _load_data(*key, contents)


@lru_cache(maxsize=4)
def _load_data(eval_ref: str | None, train_ref: str | None, classes: Classes, contents: tuple[str, ...]) -> SearchData:  # noqa: ARG001
    """load_data's work; `contents` (the files' digests) only keys the cache."""
    from edgemap.data.classes import align_to_model
    from edgemap.data.resolve import load_eval_data
    from edgemap.data.sample import load_sample

    eval_set = load_sample() if eval_ref is None else load_eval_data(eval_ref, "test")
    train_set = load_eval_data(train_ref, "train") if train_ref else None
    if classes:
        eval_set = align_to_model(eval_set, classes)
        train_set = align_to_model(train_set, classes) if train_set is not None else None
    return split_data(eval_set, train_set)


def data_section(recipe: dict) -> tuple[str | None, str | None, Classes]:
    """(eval, train, classes) of the recipe's `data`: classes is the model's output order (None: the data's own)."""
    d = recipe.get("data") or {}
    if not isinstance(d, dict) or set(d) - {"eval", "train", "classes", "val"}:
        raise EdgemapError(f"recipe: 'data' takes eval, train, val and classes, got {d!r}")
    classes = d.get("classes")
    if classes is not None and (not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)):
        raise EdgemapError(f"recipe: data.classes must be a list of class names, got {classes!r}")
    return ((str(d["eval"]) if d.get("eval") else None), (str(d["train"]) if d.get("train") else None),
            tuple(classes) if classes else None)


def val_ref(recipe: dict) -> str | None:
    """The recipe's data.val: images the model was not trained on that judge pruning's fine-tuning (None: not given)."""
    val = (recipe.get("data") or {}).get("val")
    return str(val) if val else None


def load_val(ref: str | None, classes: Classes, like: ImageSet) -> ImageSet | None:
    """The validation images (an .npz or image folder; root/val/<class>/ when present), in the model's class order,
    refused in one line when their image size differs from the evaluation images `like`."""
    if ref is None:
        return None
    from edgemap.pipeline.data_digest import data_digest

    val = _load_val(ref, classes, data_digest(ref))
    if val.images.shape[1:] != like.images.shape[1:]:
        raise EdgemapError(f"{val.source}: validation images are {'x'.join(map(str, val.images.shape[1:]))} (HxWxC), "
                           f"the evaluation images {'x'.join(map(str, like.images.shape[1:]))}")
    return val


@lru_cache(maxsize=2)
def _load_val(ref: str, classes: Classes, contents: str) -> ImageSet:  # noqa: ARG001 - contents keys the cache
    from edgemap.data.classes import align_to_model
    from edgemap.data.resolve import load_eval_data

    val = load_eval_data(ref, "val")
    return align_to_model(val, classes) if classes else val


def data_digests(recipe: dict) -> dict[str, str]:
    """Each data reference of the recipe (the shipped sample when there is no eval data) -> the digest of its contents."""
    from edgemap.data.sample import SAMPLE_PATH
    from edgemap.pipeline.data_digest import data_digest

    eval_ref, train_ref, _ = data_section(recipe)
    refs = [_norm(eval_ref) or str(SAMPLE_PATH)] + ([train_ref] if train_ref else [])
    refs += [val] if (val := val_ref(recipe)) else []
    return {ref: data_digest(ref) for ref in refs}


def data_key(recipe: dict) -> str:
    """What identifies the data passes read: the data section, what its files hold (so a data set changed at the same
    path is new data), the preprocessing and the hold-out rule."""
    extra = [val_ref(recipe)] if val_ref(recipe) else []  # keys without validation images stay as they were
    text = json.dumps([data_section(recipe), data_digests(recipe), recipe.get("preprocess"), SAMPLE_CALIBRATION,
                       HOLDOUT_SEED, *extra], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def preprocess_of(recipe: dict):  # noqa: ANN201 - PreprocessSpec | None
    """The recipe's preprocessing (None: a checkpoint's own normalisation applies)."""
    from edgemap.data.preprocess import PreprocessSpec

    pre = recipe.get("preprocess")
    return PreprocessSpec.from_dict(pre, "recipe: preprocess") if pre else None


def recipe_context(recipe: dict, progress: bool = False, parity_n: int = 256) -> tuple[PassContext, SearchData]:
    """The PassContext the recipe's passes run with, and its data (the replay evaluates on data.eval_set)."""
    data = load_data(*data_section(recipe))
    spec = preprocess_of(recipe)
    ctx = PassContext(train_set=data.train_set, calib_set=data.calib_set, eval_set=None, latency_runs=0,
                      progress=progress, data_key=data_key(recipe), parity_n=parity_n,
                      val_set=load_val(val_ref(recipe), data_section(recipe)[2], data.eval_set))
    if spec is not None and not _is_checkpoint(recipe):
        ctx.norm = spec
    return ctx, data


def _is_checkpoint(recipe: dict) -> bool:
    model = recipe.get("model") or {}
    return "shipped" in model or str(model.get("path", "")).endswith(".safetensors")
