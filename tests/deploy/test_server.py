"""The HTTP server: request kinds, limits (body, pixels from the header), auth, metrics, overload, timeouts."""

import asyncio
import io
import re

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from edgemap.data.sample import load_sample
from edgemap.deploy.batcher import BatchConfig
from edgemap.deploy.edge import EdgeModel
from edgemap.deploy.payload import Limits
from edgemap.deploy.server import ServeConfig, create_app

IMAGES = load_sample().images[:6]
TOKEN = "s3cret-token-0123456789"


@pytest.fixture(scope="module")
def client(bundle):
    with TestClient(create_app(bundle, ServeConfig(limits=Limits(max_body_bytes=1 << 20, max_pixels=512 * 512)))) as c:
        yield c


@pytest.fixture(scope="module")
def expected(bundle):
    return [p.labels[0] for p in EdgeModel(bundle).classify(IMAGES, 1)]


def metric(client, name: str, **labels) -> float:
    """One sample of the server's /metrics (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in client.get("/metrics").text.splitlines():
        m = re.match(r"(\w+)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))).strip(",") == want:
            return float(m.group(3))
    return 0.0


def test_predict_accepts_raw_multipart_and_json(client, expected, encode):
    r = client.post("/v1/predict", content=encode(IMAGES[0]), headers={"content-type": "image/png"})
    assert r.status_code == 200 and r.json()["predictions"][0]["top1"] == expected[0]
    files = [("file", ("a.png", encode(IMAGES[1]), "image/png")), ("file", ("b.bmp", encode(IMAGES[2], "BMP")))]
    r = client.post("/v1/predict", files=files)
    assert [p["top1"] for p in r.json()["predictions"]] == expected[1:3]
    r = client.post("/v1/predict", json=IMAGES[:4].tolist())  # a JSON array of images
    assert [p["top1"] for p in r.json()["predictions"]] == expected[:4]
    r = client.post("/v1/predict", json=IMAGES[3].tolist())  # one image
    assert [p["top1"] for p in r.json()["predictions"]] == expected[3:4]
    r = client.post("/v1/predict", json={"images": IMAGES[4:6].tolist()})
    assert [p["top1"] for p in r.json()["predictions"]] == expected[4:6]
    gray = IMAGES[5].mean(axis=2).astype(np.uint8)  # a grayscale image given as H x W, inside "pixels"/"images"
    want = client.post("/v1/predict", json={"pixels": gray[:, :, None].tolist()}).json()["predictions"]
    assert client.post("/v1/predict", json={"pixels": gray.tolist()}).json()["predictions"] == want
    r = client.post("/v1/predict", json={"images": [gray.tolist(), IMAGES[4].tolist()]})
    assert [p["top1"] for p in r.json()["predictions"]] == [want[0]["top1"], expected[4]]


def test_other_image_modes_and_sizes_follow_the_bundle_preprocessing(client, bundle):
    model = EdgeModel(bundle)
    for mode in ("L", "RGBA", "P"):
        im = Image.fromarray(IMAGES[0]).resize((50, 40)).convert(mode)
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        r = client.post("/v1/predict", content=buf.getvalue())
        assert r.status_code == 200, r.text
        want = model.classify([np.asarray(im.convert("RGB"))], 1)[0].labels[0]
        assert r.json()["predictions"][0]["top1"] == want


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header claiming width x height pixels, followed by a few bytes of compressed data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_from_the_header(client):
    buf = io.BytesIO()
    Image.new("L", (2000, 2000)).save(buf, format="PNG")  # a real image, above this server's 512 x 512 only
    for body in (buf.getvalue(), png_claiming(15000, 15000), png_claiming(100_000, 100_000)):
        assert len(body) < 300_000
        r = client.post("/v1/predict", content=body)
        assert r.status_code == 413 and "pixels" in r.json()["detail"]
    assert metric(client, "edgemap_rejected_requests_total", reason="too_many_pixels") >= 3


def test_body_limit_with_and_without_content_length(client):
    r = client.post("/v1/predict", content=b"\0" * ((1 << 20) + 1))
    assert r.status_code == 413 and "limit" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit must still hold while streaming
        for _ in range(40):
            yield b"\0" * 65536

    r = client.post("/v1/predict", content=chunks())
    assert r.status_code == 413


@pytest.mark.parametrize("body,ctype,status,words", [
    (b"", "image/png", 400, "empty"),
    (b"not an image", "image/png", 400, "not a readable"),
    (b"[[[1, 2]]]", "application/json", 400, "C = 1 or 3"),
    (b"[[[300, 0, 0]]]", "application/json", 400, "0..255"),
    (b"[[[1.5, 0, 0]]]", "application/json", 400, "integers"),
    (b"{\"pixels\": [[1], [2, 3]]}", "application/json", 400, "pixels"),
    (b"[" * 50000, "application/json", 400, "JSON"),
    (b"{}", "application/json", 400, "pixels"),
    (b"{\"pixels\": [1, 2, 3]}", "application/json", 400, "H x W (gray) or H x W x C"),
    (b"--x\r\n", "multipart/form-data; boundary=x", 400, "multipart"),
    (b"abc", "multipart/form-data", 400, "multipart"),
])
def test_bad_bodies_get_a_4xx_with_a_reason(client, body, ctype, status, words):
    r = client.post("/v1/predict", content=body, headers={"content-type": ctype})
    assert r.status_code == status and words in r.json()["detail"]


def test_truncated_image_and_too_many_images(client, encode):
    png = encode(IMAGES[0])
    assert client.post("/v1/predict", content=png[: len(png) // 2]).status_code == 400
    r = client.post("/v1/predict", json=np.zeros((65, 2, 2, 3), int).tolist())
    assert r.status_code == 413 and "at most 64" in r.json()["detail"]


def test_model_health_ready_docs_and_legacy_paths(client, classes, encode):
    assert client.get("/v1/model").json()["class_names"] == classes
    assert client.get("/info").json()["backend"] == "onnxruntime"
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").json()["status"] == "ready"
    assert client.get("/health").json()["selftest"]["top1_agreement"] == 1.0
    assert "/v1/predict" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200
    r = client.post("/predict", content=encode(IMAGES[0]))  # the old path answers in the old shape
    assert r.status_code == 200 and "top1" in r.json() and "latency_ms" in r.json()


def test_metrics_count_requests_by_code_and_batches(client, encode):
    before = metric(client, "edgemap_requests_total", path="/v1/predict", code="200")
    client.post("/v1/predict", content=encode(IMAGES[0]))
    client.post("/v1/predict", content=b"junk")
    assert metric(client, "edgemap_requests_total", path="/v1/predict", code="200") == before + 1
    assert metric(client, "edgemap_requests_total", path="/v1/predict", code="400") >= 1
    assert metric(client, "edgemap_batch_size_count") >= 1
    assert metric(client, "edgemap_model_load_seconds") > 0
    client.get("/no/such/path")
    assert metric(client, "edgemap_requests_total", path="other", code="404") >= 1  # bounded labels


def test_bearer_token(bundle, encode):
    with TestClient(create_app(bundle, ServeConfig(token=TOKEN))) as c:
        assert c.get("/healthz").status_code == 200
        r = c.post("/v1/predict", content=encode(IMAGES[0]))
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert c.post("/v1/predict", content=encode(IMAGES[0]), headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/metrics").status_code == 401
        ok = c.post("/v1/predict", content=encode(IMAGES[0]), headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        assert metric_auth(c, "edgemap_rejected_requests_total") >= 2


def metric_auth(c, name):
    text = c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    return float(re.search(rf'^{name}\{{reason="unauthorized"\}} (\S+)$', text, re.M).group(1))


def test_token_rules(tmp_path, monkeypatch):
    from edgemap.deploy.http_gate import read_token
    from edgemap.errors import EdgemapError

    (tmp_path / "t").write_text("short\n")
    with pytest.raises(EdgemapError, match=r"/t: the token must be at least 16") as short:
        read_token(tmp_path / "t")
    assert "serve" not in str(short.value)  # the split client reads tokens with it too
    monkeypatch.setenv("EDGEMAP_SERVE_TOKEN", "has a space in it, and long")
    with pytest.raises(EdgemapError, match=r"^\$EDGEMAP_SERVE_TOKEN: the token must"):
        read_token(None)
    (tmp_path / "t").write_text(TOKEN + "\n")
    assert read_token(tmp_path / "t") == TOKEN
    monkeypatch.setenv("EDGEMAP_SERVE_TOKEN", TOKEN)
    assert read_token(None) == TOKEN


async def _slow_body(seconds: float):
    yield b"\x89PNG"
    await asyncio.sleep(seconds)
    yield b"rest"


def test_full_server_answers_503_with_retry_after_and_slow_clients_time_out(bundle, encode):
    import httpx

    config = ServeConfig(batching=BatchConfig(max_queue=1), request_timeout_s=0.5)
    app = create_app(bundle, config)

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            slow = asyncio.create_task(c.post("/v1/predict", content=_slow_body(1.0)))
            await asyncio.sleep(0.1)  # the slow client now holds the only place
            busy = await c.post("/v1/predict", content=encode(IMAGES[0]))
            return busy, await slow, await c.post("/v1/predict", content=encode(IMAGES[0]))

    busy, slow, after = asyncio.run(scenario())
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert slow.status_code == 408 and "timed out" in slow.json()["detail"]
    assert after.status_code == 200  # the place was given back


def test_concurrent_requests_are_batched(bundle, encode, expected):
    import httpx

    app = create_app(bundle, ServeConfig(batching=BatchConfig(max_batch=16, max_wait_ms=50)))

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            rs = await asyncio.gather(*[c.post("/v1/predict", content=encode(IMAGES[i % 6])) for i in range(24)])
            return rs, (await c.get("/metrics")).text

    rs, text = asyncio.run(scenario())
    assert [r.json()["predictions"][0]["top1"] for r in rs] == [expected[i % 6] for i in range(24)]
    batches = float(re.search(r"^edgemap_batch_size_count (\S+)$", text, re.M).group(1))
    assert batches < 24  # some requests shared a batch


def test_on_result_hook_sees_every_prediction(bundle, encode):
    seen = []
    with TestClient(create_app(bundle, on_result=seen.append)) as c:
        c.post("/v1/predict", json=IMAGES[:3].tolist())
    assert [r["index"] for r in seen] == [0, 1, 2] and all(r["source"] == "serve" and "top1" in r for r in seen)
