"""The in-memory labelled image set every loader returns, and its validation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgemap.errors import EdgemapError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class ImageSet:
    """Images as uint8 N x H x W x C (RGB), integer labels, class names, and which images are exact.

    `lossless` is all True unless the source says otherwise (the shared CIFAR-10 test split has
    9,000 JPEG-decoded images); accuracy is reported on both the whole set and the exact subset.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    source: str
    lossless: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.lossless is None:
            object.__setattr__(self, "lossless", np.ones(len(self.labels), dtype=bool))
        validate(self)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray | slice) -> "ImageSet":
        """A new ImageSet holding the selected images (index array, boolean mask or slice)."""
        return ImageSet(self.images[index], self.labels[index], self.class_names, self.source, self.lossless[index])

    def exact(self) -> "ImageSet":
        """Only the bit-exact images."""
        return self.subset(self.lossless)


def validate(ds: ImageSet) -> None:
    """Raise EdgemapError naming the first problem: shape, dtype, empty set, labels out of range."""
    x, y = ds.images, ds.labels
    where = ds.source
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
        raise EdgemapError(f"{where}: images must be uint8, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim != 4 or x.shape[3] not in (1, 3):
        raise EdgemapError(f"{where}: images must be N x H x W x C with C in (1, 3), got shape {x.shape}")
    if len(x) == 0:
        raise EdgemapError(f"{where}: no images")
    if not isinstance(y, np.ndarray) or y.ndim != 1 or len(y) != len(x):
        raise EdgemapError(f"{where}: labels must be a 1-D array of {len(x)} entries, got shape {getattr(y, 'shape', None)}")
    if not np.issubdtype(y.dtype, np.integer):
        raise EdgemapError(f"{where}: labels must be integers, got {y.dtype}")
    n_classes = len(ds.class_names)
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise EdgemapError(f"{where}: label {int(y[i])} at index {i} is out of range 0..{n_classes - 1}")
    if ds.lossless.shape != y.shape or ds.lossless.dtype != bool:
        raise EdgemapError(f"{where}: 'lossless' must be a boolean array of {len(y)} entries")
