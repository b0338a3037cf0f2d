"""The server with bundles unlike CIFAR-10's: a grayscale 28 x 28 model without BatchNorm (color and gray uploads
both follow the manifest's preprocessing), and a bundle that does not resize (wrong sizes are a 400)."""

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from edgemap.deploy.edge import EdgeModel
from edgemap.deploy.server import create_app


def gray_bundle(folder, preprocess: str):
    import torch

    from edgemap.convert.onnx_export import export_onnx
    from edgemap.data.preprocess import parse_preprocess
    from edgemap.deploy.bundle import pack
    from edgemap.runtime.onnxruntime_backend import OrtSession

    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 26 * 26, 3))
    onnx_path = export_onnx(net.eval(), folder / "gray.onnx", (1, 28, 28))
    spec = parse_preprocess(preprocess)
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 3), dtype=np.uint8)
    with OrtSession(onnx_path) as s:
        logits = s.run(spec.apply(images))
    return pack(onnx_path, "onnxruntime", folder / "bundle", spec.to_dict(), ["a", "b", "c"], images, logits)


@pytest.fixture(scope="module")
def gray(tmp_path_factory):
    return gray_bundle(tmp_path_factory.mktemp("gray"), "resize=28x28,channels=gray,scale=1/255,mean=0.5,std=0.5")


def test_gray_model_takes_color_gray_and_json_uploads(gray, encode):
    rng = np.random.default_rng(3)
    color = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    gray_img = rng.integers(0, 256, (28, 28, 1), dtype=np.uint8)
    model = EdgeModel(gray)
    with TestClient(create_app(gray)) as c:
        for img, body in ((color, encode(color, "JPEG")), (gray_img, encode(gray_img))):
            r = c.post("/v1/predict", content=body)
            assert r.status_code == 200, r.text
            decoded = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))
            assert r.json()["predictions"][0]["top1"] == model.classify([decoded], 1)[0].labels[0]
        r = c.post("/v1/predict", json=gray_img.tolist())
        assert r.status_code == 200 and r.json()["predictions"][0]["top1"] == model.classify([gray_img], 1)[0].labels[0]


def test_bundle_without_resize_refuses_other_sizes_with_400(tmp_path, encode):
    b = gray_bundle(tmp_path, "channels=gray,scale=1/255")
    with TestClient(create_app(b)) as c:
        ok = c.post("/v1/predict", content=encode(np.zeros((28, 28, 3), np.uint8)))
        assert ok.status_code == 200
        r = c.post("/v1/predict", content=encode(np.zeros((30, 20, 3), np.uint8)))
        assert r.status_code == 400 and "takes inputs of shape" in r.json()["detail"]
        r = c.post("/v1/predict", json=[np.zeros((28, 28, 1), int).tolist(), np.zeros((30, 28, 1), int).tolist()])
        assert r.status_code == 400 and "share a size" in r.json()["detail"]
