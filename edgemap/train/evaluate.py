"""Top-1 accuracy (whole set and exact subset) and confusion matrix for a torch model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from edgemap.data.dataset import ImageSet
from edgemap.data.transforms import Normalization, to_nchw_float


@dataclass(frozen=True)
class EvalResult:
    """Accuracy in percent on all images and on the bit-exact ones, and the confusion matrix."""

    top1: float
    top1_exact: float | None
    n: int
    n_exact: int
    confusion: np.ndarray  # rows: true class, columns: predicted class

    def to_dict(self) -> dict:
        return {"top1": round(self.top1, 3), "top1_exact": None if self.top1_exact is None else round(self.top1_exact, 3),
                "n": self.n, "n_exact": self.n_exact}


def accuracy_report(predictions: np.ndarray, data: ImageSet) -> EvalResult:
    """Score predicted class indices against the labels of `data` (framework-free: runtimes reuse it)."""
    k = len(data.class_names)
    correct = predictions == data.labels
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (data.labels, predictions), 1)
    n_exact = int(data.lossless.sum())
    exact = float(correct[data.lossless].mean() * 100) if n_exact else None
    return EvalResult(float(correct.mean() * 100), exact, len(data), n_exact, confusion)


@torch.no_grad()
def predict_logits(model: nn.Module, data: ImageSet, norm: Normalization, batch_size: int = 500) -> np.ndarray:
    """Logits of `model` (in eval mode) for every image, batch by batch to bound memory."""
    model.eval()
    outs = []
    for start in range(0, len(data), batch_size):
        x = torch.from_numpy(to_nchw_float(data.images[start:start + batch_size], norm))
        outs.append(model(x).float().numpy())
    return np.concatenate(outs)


def evaluate(model: nn.Module, data: ImageSet, norm: Normalization, batch_size: int = 500) -> EvalResult:
    """Accuracy of a torch model on `data`."""
    return accuracy_report(predict_logits(model, data, norm, batch_size).argmax(1), data)
