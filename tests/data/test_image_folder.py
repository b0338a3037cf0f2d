import numpy as np
import pytest
from PIL import Image

from edgemap.data.image_folder import load_image_folder
from edgemap.data.resolve import load_eval_data
from edgemap.errors import EdgemapError


def write_folder(root, sizes=None):
    sizes = sizes or {}
    for c, cls in enumerate(["cat", "dog"]):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            size = sizes.get((cls, i), (32, 32))
            Image.fromarray(np.full((*size, 3), 40 * c + i, np.uint8)).save(root / cls / f"{i}.png")
    return root


def test_loads_sorted_classes(tmp_path):
    ds = load_image_folder(write_folder(tmp_path / "imgs"))
    assert ds.class_names == ("cat", "dog")
    assert ds.images.shape == (6, 32, 32, 3)
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.images[4, 0, 0, 0] == 41  # dog/1.png, pixels kept exactly (PNG)


def test_explicit_class_order_and_split_folder(tmp_path):
    write_folder(tmp_path / "data" / "test")
    ds = load_eval_data(tmp_path / "data", "test")
    assert ds.class_names == ("cat", "dog")
    ds2 = load_image_folder(tmp_path / "data" / "test", class_names=("dog", "cat"))
    assert ds2.labels.tolist() == [0, 0, 0, 1, 1, 1] and ds2.images[0, 0, 0, 0] == 40


def test_mixed_sizes_rejected_unless_resized(tmp_path):
    root = write_folder(tmp_path / "imgs", {("dog", 2): (20, 24)})
    with pytest.raises(EdgemapError, match=r"dog/2.png: image is 24x20"):
        load_image_folder(root)
    assert load_image_folder(root, size=(32, 32)).images.shape == (6, 32, 32, 3)


def test_empty_class_folder_and_unreadable_image(tmp_path):
    root = write_folder(tmp_path / "imgs")
    (root / "emu").mkdir()
    with pytest.raises(EdgemapError, match="emu: class folder has no images"):
        load_image_folder(root)
    (root / "emu" / "0.png").write_bytes(b"not a png")
    with pytest.raises(EdgemapError, match=r"emu/0.png: unreadable image"):
        load_image_folder(root)


def test_empty_root(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgemapError, match="no class sub-folders"):
        load_image_folder(tmp_path / "empty")
