import io
import pickle
import tarfile

import numpy as np
import pytest

from edgemap.data.cifar10 import load_cifar10, load_npz
from edgemap.data.dataset import ImageSet
from edgemap.data.sample import load_sample
from edgemap.errors import EdgemapError


def test_python_batches_folder_loads_in_official_layout(cifar_python_dir):
    train = load_cifar10("train", cifar_python_dir.parent)
    test = load_cifar10("test", cifar_python_dir)
    assert train.images.shape == (40, 32, 32, 3) and train.images.dtype == np.uint8
    assert test.images.shape == (6, 32, 32, 3)
    raw = pickle.loads((cifar_python_dir / "test_batch").read_bytes())
    # the first pixel of image 0: red at offset 0, green at 1024, blue at 2048 of the row
    assert tuple(test.images[0, 0, 0]) == (raw[b"data"][0, 0], raw[b"data"][0, 1024], raw[b"data"][0, 2048])
    assert test.labels.tolist() == raw[b"labels"]


def test_tarball_loads(cifar_python_dir, tmp_path):
    tarball = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(cifar_python_dir, arcname="cifar-10-batches-py")
    assert len(load_cifar10("train", tarball)) == 40
    assert len(load_cifar10("test", tmp_path)) == 6  # folder holding only the tarball


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_unpickler_refuses_arbitrary_objects(cifar_python_dir):
    (cifar_python_dir / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(EdgemapError, match="not a CIFAR-10 batch.*refusing to load builtins.print"):
        load_cifar10("test", cifar_python_dir)


def test_missing_batch_is_named(cifar_python_dir):
    (cifar_python_dir / "data_batch_3").unlink()
    with pytest.raises(EdgemapError, match="missing CIFAR-10 batch file.*data_batch_3"):
        load_cifar10("train", cifar_python_dir)


def test_missing_root_and_unknown_split(tmp_path):
    with pytest.raises(EdgemapError, match="CIFAR-10 not found"):
        load_cifar10("test", tmp_path / "nope")
    with pytest.raises(EdgemapError, match="unknown split"):
        load_cifar10("valid", tmp_path)


def test_corrupt_npz(tmp_path):
    bad = tmp_path / "cifar10_test.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(EdgemapError, match="not a readable .npz"):
        load_cifar10("test", tmp_path)


@pytest.mark.parametrize("images, labels, message", [
    (np.zeros((4, 32, 32, 3), np.float32), np.zeros(4, np.int64), "must be uint8"),
    (np.zeros((4, 32, 32, 5), np.uint8), np.zeros(4, np.int64), "N x H x W x C"),
    (np.zeros((4, 32, 32, 3), np.uint8), np.zeros(3, np.int64), "1-D array of 4"),
    (np.zeros((4, 32, 32, 3), np.uint8), np.array([0, 1, 10, 2]), "label 10 at index 2 is out of range"),
    (np.zeros((0, 32, 32, 3), np.uint8), np.zeros(0, np.int64), "no images"),
])
def test_bad_arrays_are_named(tmp_path, images, labels, message):
    path = tmp_path / "x.npz"
    np.savez(path, images=images, labels=labels)
    with pytest.raises(EdgemapError, match=message):
        load_npz(path)


def test_npz_without_keys(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, x=np.zeros(3))
    with pytest.raises(EdgemapError, match="must hold 'images' and 'labels'"):
        load_npz(path)


def test_shipped_sample_is_the_exact_first_thousand(cifar_root):
    sample = load_sample()
    assert len(sample) == 1000 and sample.lossless.all()
    test = load_cifar10("test", cifar_root)
    assert np.array_equal(sample.images, test.images[:1000])
    assert np.array_equal(sample.labels, test.labels[:1000])
    assert test.lossless[:1000].all() and not test.lossless[1000:].any()


def test_subset_and_exact():
    ds = ImageSet(np.zeros((4, 2, 2, 3), np.uint8), np.array([0, 1, 2, 3]), tuple("abcd"), "t",
                  np.array([True, False, True, False]))
    assert ds.exact().labels.tolist() == [0, 2]
    assert len(ds.subset(slice(1, 3))) == 2
