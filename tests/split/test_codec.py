"""Activation and input encodings: exact sizes, round trips, and bodies that do not match their headers."""

from __future__ import annotations

import numpy as np
import pytest

from edgemap.errors import EdgemapError
from edgemap.split import codec


@pytest.fixture
def relu_act() -> np.ndarray:
    x = np.random.default_rng(0).standard_normal((1, 16, 8, 8)).astype(np.float32)
    return np.maximum(x, 0)


def test_fp32_is_exact_and_int8_is_exactly_a_quarter(relu_act):
    fp32 = codec.encode_activation(relu_act, "fp32")
    assert np.array_equal(codec.decode_activation(fp32.body, fp32.headers), relu_act)
    int8 = codec.encode_activation(relu_act, "int8")
    assert len(fp32.body) == 4 * len(int8.body) == 4 * relu_act.size
    assert int8.headers["X-Zero-Point"] == "0"  # post-ReLU: zeros stay zeros
    back = codec.decode_activation(int8.body, int8.headers)
    assert np.abs(back - relu_act).max() <= float(int8.headers["X-Scale"]) / 2 + 1e-6
    fp16 = codec.encode_activation(relu_act, "fp16")
    assert len(fp16.body) * 2 == len(fp32.body)
    np.testing.assert_allclose(codec.decode_activation(fp16.body, fp16.headers), relu_act, rtol=1e-3, atol=1e-3)


def test_int8_zstd_is_lossless_over_int8_and_smaller_after_relu(relu_act):
    int8 = codec.encode_activation(relu_act, "int8")
    packed = codec.encode_activation(relu_act, "int8-zstd")
    assert len(packed.body) < len(int8.body)
    assert np.array_equal(codec.decode_activation(packed.body, packed.headers), codec.decode_activation(int8.body, int8.headers))


def test_signed_activation_keeps_its_range():
    x = np.linspace(-3, 1, 64, dtype=np.float32).reshape(1, 64)
    p = codec.encode_activation(x, "int8")
    assert np.abs(codec.decode_activation(p.body, p.headers) - x).max() < 4 / 255


@pytest.mark.parametrize("change, match", [
    ({"X-Shape": "1,16,8,9"}, "needs"), ({"X-Shape": "a,b"}, "bad X-Shape"), ({"X-Shape": "0"}, "bad X-Shape"),
    ({"X-Encoding": "int4"}, "unknown activation encoding"), ({"X-Scale": "x"}, "numeric X-Scale"),
])
def test_body_not_matching_headers_is_refused(relu_act, change, match):
    p = codec.encode_activation(relu_act, "int8")
    with pytest.raises(EdgemapError, match=match):
        codec.decode_activation(p.body, {**p.headers, **change})


def test_corrupt_zstd_body_is_refused(relu_act):
    p = codec.encode_activation(relu_act, "int8-zstd")
    with pytest.raises(EdgemapError, match="does not decompress|bytes"):
        codec.decode_activation(b"\x28\xb5\x2f\xfd" + p.body[4:10], p.headers)


@pytest.mark.parametrize("kind", ["raw", "png", "jpeg", "webp"])
def test_images_round_trip(kind):
    img = np.random.default_rng(1).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    p = codec.encode_image(img, kind, 90)
    back = codec.decode_image(p.body, p.headers)
    assert back.shape == img.shape
    if kind in ("raw", "png"):
        assert np.array_equal(back, img)


def test_garbage_image_is_refused():
    with pytest.raises(EdgemapError, match="not a readable image"):
        codec.decode_image(b"garbage", {"X-Encoding": "jpeg"})
