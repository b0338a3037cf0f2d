"""One entry point that turns a --data argument into an ImageSet, whatever its form."""

from __future__ import annotations

from pathlib import Path

from edgemap.data.dataset import ImageSet
from edgemap.errors import EdgemapError


def load_eval_data(data: str | Path | None, split: str = "test") -> ImageSet:
    """--data given: an .npz, an image folder (root/<class>/ or root/<split>/<class>/), or a CIFAR-10 location.
    Not given: $EDGEMAP_CIFAR10 when set, else the shipped 1,000-image sample."""
    import os

    from edgemap.data.cifar10 import ENV_VAR, load_cifar10, load_npz
    from edgemap.data.image_folder import load_image_folder
    from edgemap.data.sample import load_sample

    if data is None:
        return load_cifar10(split) if os.environ.get(ENV_VAR) else load_sample()
    path = Path(data)
    if not path.exists():
        raise EdgemapError(f"{path}: data not found")
    if path.is_file() and path.suffix == ".npz":
        return load_npz(path)
    if path.is_dir():
        names = {p.name for p in path.iterdir()}
        is_cifar = any(n.startswith(("cifar10_", "cifar-10", "data_batch", "test_batch")) for n in names)
        if not is_cifar:
            if (path / split).is_dir():
                return load_image_folder(path / split)
            return load_image_folder(path)
    return load_cifar10(split, path)
