"""The shipped sample: the 1,000 exact CIFAR-10 test images, for offline calibration and evaluation."""

from __future__ import annotations

from pathlib import Path

from edgemap.data.dataset import ImageSet

SAMPLE_PATH = Path(__file__).parent / "sample" / "cifar10_test_exact1000.npz"


def load_sample() -> ImageSet:
    """The 1,000 bit-exact CIFAR-10 test images shipped inside the package."""
    from edgemap.data.cifar10 import load_npz

    ds = load_npz(SAMPLE_PATH)
    return ImageSet(ds.images, ds.labels, ds.class_names, "shipped sample (CIFAR-10 test 0-999, exact)", ds.lossless)
