"""Class names and their order: given by the user, carried by the model, matched against the data.

A classifier's output i means one class; an image folder's labels come from its sub-folder names.
Nothing guarantees the two orders agree (folders are sorted alphabetically, models are not), so:
  - the user says the model's order with `--classes a,b,c` or `--labels FILE` (one name per line);
  - a model can carry it: ONNX `metadata_props` key `class_names` (a JSON list), a checkpoint's record;
  - `align_to_model` relabels the data into the model's order by name, and refuses data whose names
    are not the model's, naming the difference;
  - `permutation_hint` looks at a confusion matrix and, when a reordering of the labels explains the
    predictions much better than the given order, says so and prints the `--classes` value that fixes it.

numpy only at import (scipy is imported by permutation_hint, onnx/onnxruntime by onnx_class_names).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemap.data.dataset import ImageSet
from edgemap.errors import EdgemapError

ONNX_METADATA_KEY = "class_names"
_ONNX_KEYS = (ONNX_METADATA_KEY, "classes", "labels")  # what exporters elsewhere use, in order of preference
PERMUTATION_GAIN = 10.0  # points a reordering must add before it is reported: chance alone adds a few on 500 images


def parse_class_list(text: str, where: str = "--classes") -> tuple[str, ...]:
    """'a,b,c' -> ('a', 'b', 'c'); empty names and duplicates are errors."""
    names = tuple(n.strip() for n in str(text).split(","))
    return _checked(names, where)


def read_labels_file(path: str | Path) -> tuple[str, ...]:
    """One class name per line (blank lines and surrounding spaces ignored), in the model's output order."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EdgemapError(f"{path}: labels file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgemapError(f"{path}: unreadable labels file ({exc.__class__.__name__})") from None
    return _checked(tuple(line.strip() for line in text.splitlines() if line.strip()), str(path))


def class_names_option(classes: str | None, labels: str | Path | None) -> tuple[str, ...] | None:
    """The command-line pair --classes / --labels as one value (None when neither is given)."""
    if classes and labels:
        raise EdgemapError("give the class order once: --classes or --labels, not both")
    if classes:
        return parse_class_list(classes)
    if labels:
        return read_labels_file(labels)
    return None


def _checked(names: tuple[str, ...], where: str) -> tuple[str, ...]:
    if not names or any(not n for n in names):
        raise EdgemapError(f"{where}: class names must be non-empty, e.g. --classes cat,dog,bird (got {list(names)})")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise EdgemapError(f"{where}: class name(s) given twice: {', '.join(dupes)}")
    return names


# --- names a model carries -------------------------------------------------------------------------
def onnx_class_names(path: str | Path) -> tuple[str, ...] | None:
    """The class order stored in an ONNX file's metadata_props (JSON list or comma-separated), or None."""
    props = _onnx_metadata(Path(path))
    for key in _ONNX_KEYS:
        if key in props:
            return decode_names(props[key], f"{path}: metadata_props[{key!r}]")
    return None


def decode_names(value: str, where: str) -> tuple[str, ...]:
    """A stored class list: a JSON list of strings, or 'a,b,c'."""
    value = value.strip()
    if value.startswith("["):
        try:
            names = json.loads(value)
        except json.JSONDecodeError as exc:
            raise EdgemapError(f"{where}: not a JSON list of class names ({exc.msg})") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise EdgemapError(f"{where}: must be a list of class-name strings")
        return _checked(tuple(n.strip() for n in names), where)
    return parse_class_list(value, where)


def set_onnx_class_names(model, names: tuple[str, ...]) -> None:  # noqa: ANN001 - onnx.ModelProto
    """Store the class order in an in-memory ONNX model's metadata_props (replacing an earlier entry)."""
    names = _checked(tuple(names), "class names")
    keep = [p for p in model.metadata_props if p.key != ONNX_METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    entry = model.metadata_props.add()
    entry.key, entry.value = ONNX_METADATA_KEY, json.dumps(list(names))


def _onnx_metadata(path: Path) -> dict[str, str]:
    try:
        import onnx
    except ImportError:  # the edge half: onnxruntime reads the same map
        import onnxruntime as ort

        try:
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for bad files
            raise EdgemapError(f"{path}: cannot read the model's metadata ({str(exc).splitlines()[0][:200]})") from None
        return dict(sess.get_modelmeta().custom_metadata_map)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf decode errors have no common type
        raise EdgemapError(f"{path}: cannot read the model's metadata ({str(exc).splitlines()[0][:200]})") from None
    return {p.key: p.value for p in model.metadata_props}


# --- data against the model's order ----------------------------------------------------------------
def align_to_model(data: ImageSet, model_names: tuple[str, ...], origin: str = "the model") -> ImageSet:
    """The same images, labelled in the model's class order (label i = model_names[i]).

    The data may hold a subset of the model's classes (its labels are mapped by name); a class name
    the model does not know is an error naming it, and the names the data lacks.
    """
    model_names = tuple(model_names)
    if tuple(data.class_names) == model_names:
        return data
    unknown = [n for n in data.class_names if n not in model_names]
    if unknown:
        absent = [n for n in model_names if n not in data.class_names]
        raise EdgemapError(
            f"{data.source}: class names differ from {origin}'s: the data has {_list(unknown)} that {origin} does not "
            f"know" + (f", and lacks {_list(absent)}" if absent else "")
            + f"; {origin}'s classes are {','.join(model_names)} (pass --classes/--labels in the model's output order)")
    index = np.array([model_names.index(n) for n in data.class_names], dtype=np.int64)
    return ImageSet(data.images, index[data.labels], model_names, data.source, data.lossless)


def _list(names: list[str], most: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


@dataclass(frozen=True)
class PermutationCheck:
    """What the best relabelling of a confusion matrix would score, and the --classes value that gives it."""

    top1: float  # as given, percent
    permuted_top1: float  # with the best one-to-one relabelling, percent
    classes: tuple[str, ...]  # output i of the model is classes[i]
    n: int

    @property
    def explains(self) -> bool:
        """True when a reordering (not the identity) adds at least PERMUTATION_GAIN points."""
        return self.permuted_top1 >= self.top1 + PERMUTATION_GAIN

    def hint(self) -> str:
        """One sentence with the fix."""
        return (f"the labels look permuted: reordered, the model scores {self.permuted_top1:.0f} % on "
                f"{self.n:,} images (as given {self.top1:.0f} %); re-run with --classes {','.join(self.classes)}")


def check_permutation(confusion: np.ndarray, class_names: tuple[str, ...]) -> PermutationCheck:
    """The one-to-one class assignment maximising the confusion matrix's diagonal (rows: true, columns: predicted)."""
    from scipy.optimize import linear_sum_assignment

    c = np.asarray(confusion)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] != len(class_names):
        raise EdgemapError(f"confusion matrix {c.shape} does not match {len(class_names)} class names")
    n = int(c.sum())
    rows, cols = linear_sum_assignment(c, maximize=True)
    by_output = [""] * len(class_names)
    for true_class, output in zip(rows, cols):
        by_output[output] = class_names[true_class]  # the model's output `output` means this data class
    pct = 100.0 / max(n, 1)
    return PermutationCheck(float(np.trace(c)) * pct, float(c[rows, cols].sum()) * pct, tuple(by_output), n)


def permutation_hint(predictions: np.ndarray, data: ImageSet) -> str | None:
    """The --classes fix when a reordering of `data`'s labels explains `predictions` clearly better, else None."""
    k = len(data.class_names)
    predictions = np.asarray(predictions)
    if k < 2 or len(predictions) != len(data) or predictions.min() < 0 or predictions.max() >= k:
        return None
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (data.labels, predictions), 1)
    check = check_permutation(confusion, data.class_names)
    return check.hint() if check.explains else None
