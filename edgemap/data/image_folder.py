"""Users' own labelled images: root/class_name/*.png|jpg, classes in sorted order unless given."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgemap.data.dataset import ImageSet
from edgemap.errors import EdgemapError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


def read_image(path: Path, mode: str = "RGB") -> np.ndarray:
    """Decode one image file to uint8 H x W x C, or raise EdgemapError naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert(mode))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise EdgemapError(f"{path}: unreadable image ({exc.__class__.__name__})") from None
    return arr[..., None] if arr.ndim == 2 else arr


def load_image_folder(root: str | Path, class_names: tuple[str, ...] | None = None, mode: str = "RGB",
                      size: tuple[int, int] | None = None) -> ImageSet:
    """Load every image under root/<class>/; all must share one size unless `size` (H, W) resizes them."""
    from PIL import Image

    root = Path(root)
    if not root.is_dir():
        raise EdgemapError(f"{root}: image folder not found")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    classes = tuple(class_names) if class_names else tuple(found)
    if not classes:
        raise EdgemapError(f"{root}: no class sub-folders (expected {root}/<class_name>/*.png)")
    missing = [c for c in classes if c not in found]
    if missing:
        raise EdgemapError(f"{root}: class folder(s) not found: {', '.join(missing)}")
    images, labels = [], []
    first_shape: tuple | None = None
    for label, cls in enumerate(classes):
        files = sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise EdgemapError(f"{root / cls}: class folder has no images (.png/.jpg/.jpeg/.bmp)")
        for f in files:
            img = read_image(f, mode)
            if size is not None and img.shape[:2] != size:
                img = np.asarray(Image.fromarray(img.squeeze(-1) if img.shape[2] == 1 else img).resize((size[1], size[0]), Image.BILINEAR))
                img = img[..., None] if img.ndim == 2 else img
            if first_shape is None:
                first_shape = img.shape
            elif img.shape != first_shape:
                raise EdgemapError(f"{f}: image is {img.shape[1]}x{img.shape[0]}, others are {first_shape[1]}x{first_shape[0]} (pass a resize)")
            images.append(img)
            labels.append(label)
    return ImageSet(np.stack(images), np.asarray(labels, dtype=np.int64), classes, str(root))
