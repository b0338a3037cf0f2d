"""Paired drop on the CIFAR-10 test split (all 10,000 and the exact 1,000) of each unseen map's best candidate per
ratio against its unpruned FP32 model: the drop's standard error from the images on which the two disagree.

    .venv/bin/python benchmarks/unseen_paired_test.py /tmp/w22/unseen_map     # unseen_map.py's --work folder

Accuracy only (no timing). Writes WORK/paired_test.json and prints one line per model and ratio.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

CIFAR = "/work/shared/data/cifar10"


def labels_and_spec(name: str, test) -> tuple[np.ndarray, object]:  # noqa: ANN001 - ImageSet
    """The test labels in the model's class order and how its inputs are fed."""
    from edgemap.data.dataset import CIFAR10_CLASSES
    from edgemap.data.preprocess import parse_preprocess
    from unseen_make import GRAY_PREPROCESS, model_order

    if name == "graynet":
        order = model_order()
        return np.array([order.index(CIFAR10_CLASSES[int(y)]) for y in test.labels]), parse_preprocess(GRAY_PREPROCESS)
    return test.labels, parse_preprocess("cifar10")


def best_per_ratio(summary: dict) -> dict[float, dict]:
    """The most accurate trial at each pruning ratio."""
    best: dict[float, dict] = {}
    for t in summary["trials"]:
        r = t["candidate"]["prune_ratio"]
        if not t.get("error") and (r not in best or t["accuracy"] > best[r]["accuracy"]):
            best[r] = t
    return best


def main() -> None:
    from edgemap.data.cifar10 import load_cifar10
    from edgemap.data.compat import predict
    from edgemap.runtime.registry import load_session
    from edgemap.train.paired import paired_drop

    work = Path(sys.argv[1])
    test = load_cifar10("test", CIFAR)
    out = {}
    for name in ("graynet", "dwhsnet"):
        labels, spec = labels_and_spec(name, test)
        best = best_per_ratio(json.loads((work / name / "results.json").read_text()))
        preds = {}
        for r, t in best.items():
            with load_session("onnxruntime", t["model_path"], 0) as session:
                preds[r] = predict(session, test.images, spec).argmax(1)
        for r in sorted(r for r in best if r > 0):
            whole = paired_drop(preds[0.0], preds[r], labels)
            exact = paired_drop(preds[0.0][:1000], preds[r][:1000], labels[:1000])
            out[f"{name} {r:g} {best[r]['key']}"] = {"all": whole.to_dict(), "exact1000": exact.to_dict()}
            print(name, r, best[r]["key"], "| all:", whole.text(), "| exact 1000:", exact.text())
    (work / "paired_test.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
