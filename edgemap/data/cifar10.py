"""CIFAR-10 from the official python tarball, its extracted folder, or .npz arrays.

Where the data lives: the `--data` flag, else $EDGEMAP_CIFAR10, else ./data/cifar10.
The official pickled batches are read with a restricted unpickler that accepts only the
known batch structure (a dict of bytes/lists/numpy arrays), never arbitrary objects.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from edgemap.data.dataset import CIFAR10_CLASSES, ImageSet
from edgemap.errors import EdgemapError

ENV_VAR = "EDGEMAP_CIFAR10"
OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"  # published on the dataset page
OFFICIAL_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
SPLITS = ("train", "test")


class _BatchUnpickler(pickle.Unpickler):
    """Allows only what a CIFAR batch pickle contains: numpy array reconstruction, nothing else."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle API
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _parse_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode one pickled batch into (N x 32 x 32 x 3 uint8, labels), checking its structure."""
    try:
        batch = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # any decode failure is a corrupt file, for the user
        raise EdgemapError(f"{where}: not a CIFAR-10 batch ({exc})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise EdgemapError(f"{where}: not a CIFAR-10 batch (expected a dict with 'data' and 'labels')")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise EdgemapError(f"{where}: batch has data {data.shape} {data.dtype}, labels {labels.shape}; expected N x 3072 uint8")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    return images, labels.astype(np.int64)


def _read_python_batches(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    names = TRAIN_BATCHES if split == "train" else (TEST_BATCH,)
    raws: dict[str, bytes] = {}
    if path.is_file():
        try:
            with tarfile.open(path, "r:gz") as tar:
                for member in tar.getmembers():
                    base = member.name.rsplit("/", 1)[-1]
                    if base in names and member.isfile():
                        raws[base] = tar.extractfile(member).read()  # type: ignore[union-attr]
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise EdgemapError(f"{path}: not a readable cifar-10-python.tar.gz ({exc})") from None
    else:
        for name in names:
            if (path / name).is_file():
                raws[name] = (path / name).read_bytes()
    missing = [n for n in names if n not in raws]
    if missing:
        raise EdgemapError(f"{path}: missing CIFAR-10 batch file(s) {', '.join(missing)}")
    parts = [_parse_batch(raws[n], f"{path}:{n}") for n in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def load_npz(path: str | Path, class_names: tuple[str, ...] = CIFAR10_CLASSES) -> ImageSet:
    """Load an .npz with `images` (uint8 N x H x W x C) and `labels`, and optionally `lossless`."""
    path = Path(path)
    if not path.is_file():
        raise EdgemapError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "images" not in z or "labels" not in z:
                raise EdgemapError(f"{path}: .npz must hold 'images' and 'labels', found {sorted(z.files)}")
            images, labels = z["images"], z["labels"]
            lossless = z["lossless"].astype(bool) if "lossless" in z else None
    except EdgemapError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise EdgemapError(f"{path}: not a readable .npz file ({exc})") from None
    if images.ndim == 3:  # N x H x W grayscale
        images = images[..., None]
    if np.issubdtype(labels.dtype, np.integer):
        labels = labels.astype(np.int64)
    return ImageSet(images, labels, tuple(class_names), str(path), lossless)


def default_root() -> Path:
    """Where CIFAR-10 is looked for when no flag is given: $EDGEMAP_CIFAR10, else ./data/cifar10."""
    return Path(os.environ.get(ENV_VAR, "data/cifar10"))


def load_cifar10(split: str, root: str | Path | None = None) -> ImageSet:
    """Load a CIFAR-10 split from `root`: a folder with cifar10_{split}.npz, with cifar-10-batches-py/
    (or the batch files themselves), or the cifar-10-python.tar.gz file itself."""
    if split not in SPLITS:
        raise EdgemapError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    root = Path(root) if root is not None else default_root()
    if not root.exists():
        raise EdgemapError(f"{root}: CIFAR-10 not found (set --data or ${ENV_VAR}, or run `edgemap data download`)")
    if root.is_file():
        if root.suffix == ".npz":
            return load_npz(root)
        images, labels = _read_python_batches(root, split)
        return ImageSet(images, labels, CIFAR10_CLASSES, f"{root}:{split}")
    for candidate in (root / f"cifar10_{split}.npz", root / f"{split}.npz"):
        if candidate.is_file():
            return load_npz(candidate)
    for folder in (root / "cifar-10-batches-py", root):
        if (folder / TEST_BATCH).is_file() or (folder / TRAIN_BATCHES[0]).is_file():
            images, labels = _read_python_batches(folder, split)
            return ImageSet(images, labels, CIFAR10_CLASSES, f"{folder}:{split}")
    tarball = root / "cifar-10-python.tar.gz"
    if tarball.is_file():
        images, labels = _read_python_batches(tarball, split)
        return ImageSet(images, labels, CIFAR10_CLASSES, f"{tarball}:{split}")
    raise EdgemapError(f"{root}: no CIFAR-10 {split} data (expected cifar10_{split}.npz, cifar-10-batches-py/ or cifar-10-python.tar.gz)")


def download(dest_dir: str | Path, url: str = OFFICIAL_URL) -> Path:
    """Download the official tarball into dest_dir and check its sha256 and md5; returns its path.

    Written to a temporary file and renamed only after the checksums match, so an interrupted
    or tampered download never leaves a file that looks valid.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / "cifar-10-python.tar.gz"
    sha, md5 = hashlib.sha256(), hashlib.md5()
    fd, tmp = tempfile.mkstemp(dir=dest_dir, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - fixed https URL
            while chunk := resp.read(1 << 20):
                sha.update(chunk)
                md5.update(chunk)
                out.write(chunk)
        if sha.hexdigest() != OFFICIAL_SHA256 and md5.hexdigest() != OFFICIAL_MD5:
            raise EdgemapError(f"{url}: checksum mismatch (sha256 {sha.hexdigest()}); file discarded")
        os.replace(tmp, target)
    except OSError as exc:
        raise EdgemapError(f"cannot download {url}: {exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
