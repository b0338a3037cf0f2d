"""A tiny ONNX Runtime bundle shared by the deploy tests (built once per session with the real packing code)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def make_bundle(out_dir, preprocess: str = "cifar10,resize=32x32", model: str = "tiny"):
    """Export a zoo model to ONNX and pack it as a bundle with its self-test (torch is needed here only)."""
    import torch

    from edgemap.convert.onnx_export import export_onnx
    from edgemap.data.preprocess import parse_preprocess
    from edgemap.data.sample import load_sample
    from edgemap.deploy.bundle import pack
    from edgemap.models import zoo
    from edgemap.runtime.onnxruntime_backend import OrtSession

    torch.manual_seed(0)
    onnx_path = export_onnx(zoo.build(model), out_dir / f"{model}.onnx")
    spec = parse_preprocess(preprocess)
    images = load_sample().images[:8]
    with OrtSession(onnx_path) as s:
        logits = s.run(spec.apply(images))
    return pack(onnx_path, "onnxruntime", out_dir / "bundle", spec.to_dict(), CLASSES, images, logits,
                {"metrics": {"accuracy": 1.0}})


@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    """A verified tiny bundle (do not modify: copy it first)."""
    return make_bundle(tmp_path_factory.mktemp("b"))


def encode_image(image: np.ndarray, fmt: str = "PNG") -> bytes:
    """Encode a uint8 H x W x C image."""
    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="session")
def classes() -> list[str]:
    """The class names the test bundles carry."""
    return list(CLASSES)


@pytest.fixture(scope="session")
def encode():
    """encode(image, fmt="PNG") -> bytes."""
    return encode_image


@pytest.fixture(scope="session")
def bundle_factory():
    """make_bundle(out_dir, preprocess, model): another bundle (other preprocessing or model)."""
    return make_bundle
