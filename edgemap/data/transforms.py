"""Normalisation and the standard CIFAR augmentation (random crop with padding, horizontal flip)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class Normalization:
    """x_float = (uint8 / 255 - mean) / std per channel; stored in checkpoints and bundles."""

    mean: tuple[float, ...] = CIFAR10_MEAN
    std: tuple[float, ...] = CIFAR10_STD

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalization":
        return cls(tuple(float(v) for v in d["mean"]), tuple(float(v) for v in d["std"]))


def to_nchw_float(images: np.ndarray, norm: Normalization) -> np.ndarray:
    """uint8 N x H x W x C -> normalised float32 N x C x H x W (numpy only: the edge runtime uses it too).

    `norm` may also be a full preprocessing spec (edgemap.data.preprocess.PreprocessSpec: resize,
    channel order, layout): then its own `apply` decides, so every loop that takes a Normalization
    also serves users' models with other preprocessing.
    """
    if hasattr(norm, "apply"):
        return norm.apply(images)
    x = images.astype(np.float32) / 255.0
    x = (x - np.asarray(norm.mean, np.float32)) / np.asarray(norm.std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
