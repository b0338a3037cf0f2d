"""Preprocessing spec: parsing, round trips, exact agreement with the zoo's normalisation and pillow."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from edgemap.data.preprocess import PreprocessSpec, convert_channels, parse_preprocess
from edgemap.data.transforms import Normalization, to_nchw_float
from edgemap.errors import EdgemapError

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (4, 20, 24, 3), dtype=np.uint8)


def test_cifar_normalization_is_a_spec_and_matches_bit_for_bit():
    spec = PreprocessSpec.from_normalization(Normalization())
    assert np.array_equal(spec.apply(IMAGES), to_nchw_float(IMAGES, Normalization()))
    assert parse_preprocess("cifar10") == spec


def test_compact_string_parses_every_key_and_round_trips():
    spec = parse_preprocess("imagenet, resize=16x12, channels=bgr, layout=nhwc")
    assert spec.resize == (16, 12) and spec.channels == "bgr" and spec.layout == "nhwc"
    assert spec.mean == (0.485, 0.456, 0.406) and spec.scale == 1 / 255
    assert parse_preprocess(spec.to_string()) == spec
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
    assert parse_preprocess("scale=1/127.5,mean=1,std=1").scale == 1 / 127.5


def test_yaml_file_form(tmp_path):
    path = tmp_path / "pre.yaml"
    path.write_text("preprocess:\n  resize: [28, 28]\n  channels: gray\n  mean: 0.5\n  std: 0.25\n")
    spec = parse_preprocess(str(path))
    assert spec == PreprocessSpec(resize=(28, 28), channels="gray", mean=(0.5,), std=(0.25,))
    out = spec.apply(IMAGES)
    assert out.shape == (4, 1, 28, 28) and out.dtype == np.float32


def test_resize_gray_and_layout_follow_pillow_exactly():
    spec = PreprocessSpec(resize=(10, 8), channels="gray", scale=1.0, layout="nhwc")
    want = np.stack([np.asarray(Image.fromarray(im).resize((8, 10), Image.BILINEAR).convert("L")) for im in IMAGES])
    assert np.array_equal(spec.apply(IMAGES)[..., 0], want.astype(np.float32))


def test_bgr_reverses_and_gray_input_is_replicated():
    assert np.array_equal(convert_channels(IMAGES, "bgr"), IMAGES[..., ::-1])
    gray = IMAGES[..., :1]
    out = PreprocessSpec(scale=1.0).apply(gray)
    assert out.shape == (4, 3, 20, 24) and np.array_equal(out[:, 0], out[:, 2])


def test_single_image_gets_a_batch_axis_and_value_range_is_known():
    spec = parse_preprocess("symmetric")
    out = spec.apply(IMAGES[0])
    assert out.shape == (1, 3, 20, 24)
    assert spec.value_range() == (-1.0, 1.0) and out.min() >= -1 and out.max() <= 1


@pytest.mark.parametrize("text, message", [
    ("resize=0x5", "resize must be two positive sizes"),
    ("channels=cmyk", "channels must be one of rgb, bgr, gray"),
    ("mean=0.1/0.2", "mean has 2 values; channels=rgb needs 1 or 3"),
    ("std=0", "std must be positive"),
    ("imagnet", "'imagnet' is neither key=value nor a preset"),
    ("colour=red", "unknown preprocessing key(s) colour"),
    ("scale=abc", "bad preprocessing value"),
])
def test_bad_specs_are_one_line_errors(text, message):
    with pytest.raises(EdgemapError, match=None) as err:
        parse_preprocess(text)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_yaml_file_names_the_file(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("resize: [1, 2\n")
    with pytest.raises(EdgemapError, match="bad.yml: not valid YAML"):
        parse_preprocess(path)
    with pytest.raises(EdgemapError, match="missing.yaml: preprocessing file not found"):
        parse_preprocess(tmp_path / "missing.yaml")


def test_preprocess_and_compat_import_and_run_without_torch():
    code = textwrap.dedent("""
        import sys
        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")
        sys.meta_path.insert(0, NoTorch())
        import numpy as np
        from edgemap.data.preprocess import parse_preprocess
        import edgemap.data.compat  # the agreement checks and sanity run are numpy-only too
        x = parse_preprocess("cifar10,resize=8x8,channels=bgr").apply(np.zeros((2, 4, 4, 3), np.uint8))
        assert x.shape == (2, 3, 8, 8)
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules)
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
