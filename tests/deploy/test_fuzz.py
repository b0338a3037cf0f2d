"""Fuzzing the server with malformed requests (hypothesis): bodies, content types, JSON, images cut short or
corrupted, decompression bombs, broken multipart. Only 4xx answers, the server keeps serving, /metrics
counts them.

300 examples in the normal suite against the app in process. benchmarks/serve_fuzz.py runs 10,000 against
a real `edgemap serve` process on loopback (EDGEMAP_FUZZ_EXAMPLES, EDGEMAP_FUZZ_SERVER=1).
"""

import io
import json
import os
import re
import struct
import zlib
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

EXAMPLES = int(os.environ.get("EDGEMAP_FUZZ_EXAMPLES", "300"))
REAL_SERVER = os.environ.get("EDGEMAP_FUZZ_SERVER") == "1"
RNG_IMAGE = np.random.default_rng(0).integers(0, 256, (24, 20, 3), dtype=np.uint8)


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(RNG_IMAGE).save(buf, format=fmt)
    return buf.getvalue()


VALID = {fmt: _encoded(fmt) for fmt in ("PNG", "JPEG", "BMP")}


def png_bomb(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with a few bytes of compressed data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


content_types = st.sampled_from(["image/png", "image/jpeg", "application/octet-stream", "text/plain", "",
                                 "application/json", "application/x+json", "multipart/form-data",
                                 "multipart/form-data; boundary=xyz", "multipart/mixed; boundary=--"])
random_bodies = st.tuples(st.binary(max_size=2048), content_types)
cut_images = st.builds(lambda fmt, cut: (VALID[fmt][:cut], "image/png"), st.sampled_from(sorted(VALID)),
                       st.integers(0, 60))
SIGNATURE_BYTES = {"PNG": 8, "JPEG": 2, "BMP": 2}  # a changed signature byte makes the file no known image
corrupted = st.builds(lambda fmt, pos, flip: (VALID[fmt][:pos] + bytes([VALID[fmt][pos] ^ flip]) + VALID[fmt][pos + 1:], ""),
                      st.sampled_from(sorted(VALID)), st.integers(0, 1), st.integers(1, 255))
bombs = st.builds(lambda w, h: (png_bomb(w, h), "image/png"), st.integers(5000, 2**31 - 1), st.integers(5000, 2**31 - 1))
json_values = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                           max_leaves=30)
bad_pixels = st.one_of(st.integers(256, 10**30), st.integers(-10**30, -1), st.floats(0.1, 254.9), st.text(max_size=3))
bad_json = st.one_of(
    json_values.filter(lambda v: not isinstance(v, (list, dict))).map(lambda v: (json.dumps(v).encode(), "application/json")),
    st.builds(lambda v: (json.dumps({"pixels": [[[v, 0, 0]]]}).encode(), "application/json"), bad_pixels),
    st.builds(lambda n: (b"[" * n + b"]" * n, "application/json"), st.integers(1, 5000)),
    st.builds(lambda c: (json.dumps([[[0] * c]]).encode(), "application/json"), st.sampled_from([0, 2, 4, 5])),
    st.builds(lambda s: (s.encode("utf-8", "surrogatepass")[:500], "application/json"), st.text(max_size=50)),
)
bad_multipart = st.builds(
    lambda parts, junk: (b"".join(b"--xyz\r\nContent-Disposition: form-data; name=\"f\"" + (b"; filename=\"a\"" if f else b"")
                                  + b"\r\n\r\n" + body + b"\r\n" for f, body in parts) + junk,
                         "multipart/form-data; boundary=xyz"),
    st.lists(st.tuples(st.booleans(), st.binary(max_size=64)), max_size=4),
    st.sampled_from([b"", b"--xyz--\r\n", b"--xy", b"\r\n--xyz--"]))
malformed = st.one_of(random_bodies, cut_images, corrupted, bombs, bad_json, bad_multipart)


@pytest.fixture(scope="module")
def target(bundle):
    """(post(body, content_type) -> (status, json), get(path) -> text)."""
    if REAL_SERVER:
        yield from _real_server(bundle)
        return
    from fastapi.testclient import TestClient

    from edgemap.deploy.server import create_app

    with TestClient(create_app(bundle)) as c:
        yield (lambda body, ctype: _answer(c.post("/v1/predict", content=body, headers={"content-type": ctype} if ctype else {})),
               lambda path: c.get(path).text)


def _answer(r):  # noqa: ANN001, ANN202
    return r.status_code, r.json()


def _real_server(bundle):  # noqa: ANN001, ANN202
    import subprocess
    import sys
    import time

    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "edgemap.cli", "serve", str(bundle), "--port", str(port)])
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            for _ in range(300):
                try:
                    if c.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            yield (lambda body, ctype: _answer(c.post("/v1/predict", content=body,
                                                      headers={"content-type": ctype} if ctype else {})),
                   lambda path: c.get(path).text)
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


def counter(text: str, code: str) -> float:
    m = re.search(rf'^edgemap_requests_total\{{code="{code}",path="/v1/predict"\}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def test_malformed_requests_get_only_4xx_and_the_server_keeps_serving(target):
    post, get = target
    codes: Counter = Counter()
    before = {c: counter(get("/metrics"), c) for c in ("400", "413")}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(malformed)
    def one(request):
        body, ctype = request
        status, answer = post(body, ctype)
        codes[status] += 1
        assert 400 <= status < 500, (status, answer, body[:80], ctype)
        assert isinstance(answer.get("detail"), str) and answer["detail"]

    one()
    assert sum(codes.values()) >= EXAMPLES
    status, answer = post(VALID["PNG"], "image/png")
    assert status == 200 and answer["predictions"][0]["top1"]
    text = get("/metrics")
    for code in ("400", "413"):
        assert counter(text, code) - before[code] == codes[int(code)]
    assert set(codes) <= {400, 413}
    print(f"fuzz: {sum(codes.values())} malformed requests -> {dict(codes)}")
