"""Before any long work: do the model, the data and the preprocessing agree? Then a quick sanity evaluation.

check_agreement compares what the preprocessing produces from these images with what the model
takes (layout, channels, size, dtype) and the data's classes with the model's outputs, and looks
at the value range; every disagreement is one precise sentence with the fix. sanity_eval runs the
unmodified model on a seeded subset and, when the accuracy is near chance, says what to check and
tries the usual mistakes (channel order, scale, mean/std) to point at the one that fixes it.

numpy only: the session is any runtime Session (onnxruntime, torch, ...).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgemap.data.dataset import ImageSet
from edgemap.data.preprocess import PRESETS, PreprocessSpec
from edgemap.errors import EdgemapError


@dataclass(frozen=True)
class Agreement:
    """Blocking problems and informative notes; `produced` is the per-sample shape the spec makes."""

    problems: tuple[str, ...]
    notes: tuple[str, ...]
    produced: tuple[int, ...]

    @property
    def ok(self) -> bool:
        """True when nothing blocks."""
        return not self.problems


def check_agreement(info: Any, data: ImageSet, spec: PreprocessSpec) -> Agreement:
    """Compare a model description (ModelInfo-like) with a data set and a preprocessing spec."""
    h, w, c = data.images.shape[1:]
    produced = spec.input_shape((h, w))
    problems = _shape_problems(info, (h, w), spec, produced)
    k = len(data.class_names)
    if info.num_classes != k:
        names = ", ".join(data.class_names[:6]) + (", ..." if k > 6 else "")
        problems.append(f"classes: the model outputs {info.num_classes} scores, the data has {k} classes ({names})")
    if info.input_dtype != "float32":
        problems.append(f"dtype: the model takes {info.input_dtype} input, edgemap's preprocessing makes float32")
    notes = _range_notes(spec, data)
    if c == 1 and spec.channels != "gray":
        notes.append(f"channels: the images are grayscale; channels={spec.channels} repeats them into 3 channels")
    return Agreement(tuple(problems), tuple(notes), produced)


def require_agreement(info: Any, data: ImageSet, spec: PreprocessSpec) -> Agreement:
    """check_agreement, raising one EdgemapError that lists every problem."""
    a = check_agreement(info, data, spec)
    if not a.ok:
        raise EdgemapError(f"{info.source}, {data.source} and preprocessing '{spec.to_string()}' do not agree: "
                           + "; ".join(a.problems))
    return a


def _shape_problems(info: Any, image_hw: tuple[int, int], spec: PreprocessSpec, produced: tuple[int, ...]) -> list[str]:
    want = tuple(info.input_shape)
    if want == produced:
        return []
    if len(want) != 3:
        return [f"input: the model takes {(None, *want)} tensors, preprocessing makes images {(None, *produced)}"]
    out = []
    if info.layout != spec.layout:
        out.append(f"layout: the model takes {info.layout.upper()} input {want}, preprocessing makes "
                   f"{spec.layout.upper()} {produced}: set layout={info.layout}")
    if info.channels != spec.num_channels:
        fix = {1: "set channels=gray", 3: "set channels=rgb (or bgr)"}.get(info.channels,
                                                                         "edgemap makes 1 or 3 channels only")
        out.append(f"channels: the model takes {info.channels} channel(s), preprocessing makes {spec.num_channels} "
                   f"(channels={spec.channels}): {fix}")
    mh, mw = info.image_hw
    got = spec.resize or image_hw
    if (mh, mw) != tuple(got):
        where = f"preprocessing resizes to {got[0]}x{got[1]}" if spec.resize else f"the images are {got[0]}x{got[1]}"
        out.append(f"size: the model takes {mh}x{mw} images, {where}: set resize={mh}x{mw}")
    return out or [f"input: the model takes {want}, preprocessing makes {produced}"]


def _range_notes(spec: PreprocessSpec, data: ImageSet) -> list[str]:
    lo, hi = spec.value_range()
    x = spec.apply(data.images[:32])
    seen = f"[{x.min():.3g}, {x.max():.3g}] (mean {x.mean():.3g}, std {x.std():.3g} on {min(32, len(data))} images)"
    notes = [f"range: after preprocessing the values span {seen}"]
    if hi - lo > 20:
        notes.append(f"range: values reach {hi:.3g}; most models take about [0, 1] or standardised values "
                     f"(is scale=1/255 missing?)")
    elif hi - lo < 0.05:
        notes.append(f"range: values span only {hi - lo:.3g}; is the scale applied twice?")
    return notes


# --- sanity evaluation ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SanityResult:
    """Top-1 on a subset, the chance level (largest class share), and a hint when they are close."""

    top1: float
    n: int
    chance: float
    hint: str | None = None

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"top1": round(self.top1, 2), "n": self.n, "chance": round(self.chance, 2), "hint": self.hint}


def near_chance(top1: float, chance: float) -> bool:
    """Within a tenth of the way from chance to perfect: 10 classes -> below 19 %, 2 classes -> below 55 %."""
    return top1 < chance + 0.1 * (100 - chance)


def predict(session: Any, images: np.ndarray, spec: PreprocessSpec, batch_size: int = 256,
            fixed_batch: int | None = None) -> np.ndarray:
    """Logits for uint8 images, batch by batch; a fixed-batch model gets zero-padded batches of its size."""
    step = fixed_batch or batch_size
    outs = []
    for start in range(0, len(images), step):
        x = spec.apply(images[start:start + step])
        n = len(x)
        if fixed_batch and n < fixed_batch:
            x = np.concatenate([x, np.zeros((fixed_batch - n, *x.shape[1:]), x.dtype)])
        outs.append(np.asarray(session.run(x))[:n])
    return np.concatenate(outs)


def sample(data: ImageSet, limit: int, seed: int = 0) -> ImageSet:
    """A seeded random subset (folders are sorted by class, so the first N would be one class)."""
    if limit <= 0 or limit >= len(data):
        return data
    idx = np.sort(np.random.default_rng(seed).permutation(len(data))[:limit])
    return data.subset(idx)


def sanity_eval(session: Any, data: ImageSet, spec: PreprocessSpec, limit: int = 500,
                fixed_batch: int | None = None) -> SanityResult:
    """Accuracy of the unmodified model on a subset, with a hint when the labels look permuted (a
    reordering of the classes explains the predictions) or, near chance, what else to check."""
    from edgemap.data.classes import permutation_hint

    sub = sample(data, limit)
    predicted = predict(session, sub.images, spec, fixed_batch=fixed_batch).argmax(1)
    top1 = float((predicted == sub.labels).mean() * 100)
    chance = float(np.bincount(sub.labels, minlength=len(sub.class_names)).max() / len(sub) * 100)
    hint = None
    if near_chance(top1, chance):
        hint = (f"accuracy {top1:.0f} % is near chance ({chance:.0f} %): check mean/std, scale, channel order "
                f"(rgb/bgr), layout, and that the class folders are in the model's class order")
        fix = suggest_fix(session, sample(sub, 200), spec, fixed_batch)
        if fix:
            hint += f"; {fix}"
    permuted = permutation_hint(predicted, sub)  # checked at any accuracy: a half-right order is far above chance
    if permuted:
        hint = f"{hint}; or {permuted}" if hint else permuted
    return SanityResult(top1, len(sub), chance, hint)


def suggest_fix(session: Any, data: ImageSet, spec: PreprocessSpec, fixed_batch: int | None = None) -> str | None:
    """Try the usual mistakes (channel order, scale, mean/std presets); name the one that clearly helps."""
    base = _top1(session, data, spec, fixed_batch)
    best: tuple[float, str] | None = None
    for label, variant in _variants(spec):
        acc = _top1(session, data, variant, fixed_batch)
        if acc >= base + 15 and (best is None or acc > best[0]):
            best = (acc, label)
    return None if best is None else f"with {best[1]} the accuracy is {best[0]:.0f} % on {len(data)} images"


def _variants(spec: PreprocessSpec) -> list[tuple[str, PreprocessSpec]]:
    out = []
    if spec.channels != "gray":
        other = "bgr" if spec.channels == "rgb" else "rgb"
        out.append((f"channels={other}", dataclasses.replace(spec, channels=other)))
    for name in ("unit", "raw", "symmetric", "imagenet", "cifar10"):
        p = PRESETS[name]
        mean, std = tuple(p.get("mean", (0.0,))), tuple(p.get("std", (1.0,)))
        if spec.channels == "gray" and len(mean) == 3:
            continue
        variant = dataclasses.replace(spec, scale=p["scale"], mean=mean, std=std)
        if variant != spec:
            out.append((f"the '{name}' preset (scale/mean/std)", variant))
    return out


def _top1(session: Any, data: ImageSet, spec: PreprocessSpec, fixed_batch: int | None) -> float:
    logits = predict(session, data.images, spec, fixed_batch=fixed_batch)
    return float((logits.argmax(1) == data.labels).mean() * 100)
