"""Bundles: packing, verification (hashes, self-test), the edge runtime without torch, the HTTP server."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from edgemap.data.sample import load_sample
from edgemap.deploy.bundle import read_manifest
from edgemap.deploy.edge import EdgeModel
from edgemap.errors import EdgemapError

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def copy_bundle(bundle, tmp_path):
    import shutil

    return shutil.copytree(bundle, tmp_path / "copy")


def test_bundle_verifies_and_classifies_any_image_size(bundle, tmp_path):
    edge = EdgeModel(bundle)
    assert edge.selftest == {"images": 8, "top1_agreement": 1.0, "max_abs_diff": 0.0}
    img = load_sample().images[0]
    Image.fromarray(img).resize((96, 96)).save(tmp_path / "big.png")
    preds = edge.classify_files([tmp_path / "big.png"], top_k=3)
    assert preds[0].labels[0] in CLASSES and len(preds[0].labels) == 3
    assert preds[0].probabilities == sorted(preds[0].probabilities, reverse=True)
    direct = edge.classify(img[None], top_k=1)[0]
    assert direct.indices[0] == int(edge.logits(img[None]).argmax())


def test_tampered_model_is_refused(bundle, tmp_path):
    b = copy_bundle(bundle, tmp_path)
    data = bytearray((b / "model.onnx").read_bytes())
    data[-10] ^= 0xFF
    (b / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(EdgemapError, match="model.onnx: contents differ from the manifest"):
        EdgeModel(b)


def test_selftest_mismatch_is_refused(bundle, tmp_path):
    b = copy_bundle(bundle, tmp_path)
    manifest = read_manifest(b)
    with np.load(b / "selftest.npz") as z:
        images, logits = z["images"], z["logits"]
    np.savez_compressed(b / "selftest.npz", images=images, logits=np.roll(logits, 1, axis=1))
    from edgemap.deploy.bundle import sha256

    manifest["files"]["selftest.npz"] = {"sha256": sha256(b / "selftest.npz"), "bytes": (b / "selftest.npz").stat().st_size}
    (b / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EdgemapError, match="self-test failed"):
        EdgeModel(b)


def test_not_a_bundle(tmp_path):
    with pytest.raises(EdgemapError, match="not an edgemap bundle"):
        EdgeModel(tmp_path)


def test_edge_runtime_runs_without_torch(bundle, tmp_path):
    """The edge half must work where torch cannot be imported."""
    Image.fromarray(load_sample().images[3]).save(tmp_path / "x.png")
    script = f"""
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("No module named 'torch' (blocked)")
sys.meta_path.insert(0, NoTorch())
from edgemap.deploy.edge import EdgeModel
m = EdgeModel({str(bundle)!r})
print(m.classify_files([{str(tmp_path / 'x.png')!r}])[0].labels[0])
assert "torch" not in sys.modules
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() in CLASSES


def test_http_server_predicts_and_rejects_bad_bodies(bundle):
    from fastapi.testclient import TestClient

    from edgemap.deploy.server import create_app

    with TestClient(create_app(bundle)) as client:
        check_legacy_paths(client, bundle)


def check_legacy_paths(client, bundle):
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/info").json()["class_names"] == CLASSES
    buf = io.BytesIO()
    img = load_sample().images[5]
    Image.fromarray(img).save(buf, format="PNG")
    r = client.post("/predict", content=buf.getvalue(), headers={"content-type": "image/png"})
    assert r.status_code == 200
    expected = EdgeModel(bundle).classify(img[None], 1)[0].labels[0]
    assert r.json()["top1"] == expected
    r = client.post("/predict", json={"pixels": img.tolist()})
    assert r.status_code == 200 and r.json()["top1"] == expected
    r = client.post("/predict", content=b"not an image")
    assert r.status_code == 400 and "not a readable PNG, JPEG or BMP image" in r.json()["detail"]


def test_classify_breaks_ties_like_argmax(bundle, monkeypatch):
    """INT8 logits are quantized, so two classes can tie exactly: top-1 must be argmax's (the lowest index),
    as the host's evaluation and the self-test count it, whatever sort numpy picks for this CPU."""
    edge = EdgeModel(bundle)
    tied = np.zeros((4, len(CLASSES)), np.float32)
    tied[:, [2, 3]] = 1.5
    tied[1, [0, 9]] = 1.5
    monkeypatch.setattr(edge, "logits", lambda images, batch_size=64: tied)
    preds = edge.classify(np.zeros((4, 32, 32, 3), np.uint8), top_k=3)
    assert [p.indices[0] for p in preds] == list(tied.argmax(1))
    assert preds[0].indices == [2, 3, 0]
