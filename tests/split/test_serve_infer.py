"""Both halves for real over HTTP: exact FP32 results, refusals (other model, unknown point, garbage),
deadlines, local fallback, the emulated link, adaptive switching, and the edge half without torch."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from edgemap.errors import EdgemapError
from edgemap.split.client import Choice, SplitClient


@pytest.fixture(scope="module")
def tail_app(split_export):  # noqa: ANN001, ANN201
    from edgemap.split.server import TailServer, create_app

    return create_app(TailServer(split_export["server"], threads=1))


def _whole(split_export, images: np.ndarray) -> np.ndarray:
    from edgemap.split.profile import run_batched

    src = split_export["src"]
    return run_batched(src.onnx_path, src.spec.apply(images))


def test_every_point_and_encoding_over_http(split_export, tail_app, helpers):
    images = split_export["images"].images[:3]
    whole = _whole(split_export, images)
    with helpers.running(tail_app) as url:
        client = SplitClient(split_export["edge"], url, timeout_s=10, threads=1)
        for cut in split_export["cuts"]:
            for enc in ("fp32", "fp16", "int8", "int8-zstd"):
                for i, img in enumerate(images):
                    r = client.run(img, Choice(cut.name, enc))
                    assert r.ran == "split" and r.bytes_up > 0
                    if enc == "fp32":
                        assert np.array_equal(r.logits[0], whole[i]), (cut.name, i)
                    else:
                        np.testing.assert_allclose(r.logits[0], whole[i], atol=0.1)
        for kind in ("raw", "png"):
            r = client.run(images[0], Choice("input", kind))
            assert r.ran == "server" and np.array_equal(r.logits[0], whole[0])
        assert client.run(images[0], Choice("device")).ran == "device"
        with pytest.raises(EdgemapError, match="unknown split point 'c42'"):
            client.run(images[0], Choice("c42", "int8"))
        client.close()


def test_server_refuses_other_models_points_and_garbage(split_export, tail_app):
    from fastapi.testclient import TestClient

    http = TestClient(tail_app)
    sha = split_export["src"].sha256
    body = np.zeros(4 * 8 * 8, np.float32).tobytes()
    base = {"X-Model-Sha256": sha, "X-Split-Point": "c1", "X-Encoding": "fp32", "X-Shape": "1,4,8,8"}
    assert http.post("/infer", content=body, headers=base).status_code == 200
    r = http.post("/infer", content=body, headers={**base, "X-Model-Sha256": "0" * 64})
    assert r.status_code == 409 and "model mismatch" in r.json()["detail"]
    assert http.post("/infer", content=body, headers={**base, "X-Split-Point": "c42"}).status_code == 409
    assert http.post("/infer", content=body[:-4], headers=base).status_code == 400
    assert http.post("/infer", content=body, headers={**base, "X-Shape": "1,4,4,16"}).status_code == 400
    nan = np.full(4 * 8 * 8, np.nan, np.float32).tobytes()
    assert http.post("/infer", content=nan, headers=base).status_code == 400


def test_mismatched_pair_is_refused_or_falls_back(split_export, helpers):
    from fastapi import FastAPI

    other = FastAPI()
    other.get("/info")(lambda: {"model_sha256": "f" * 64, "points": {}})
    image = split_export["images"].images[0]
    with helpers.running(other) as url:
        with pytest.raises(EdgemapError, match="mismatched split"):
            SplitClient(split_export["edge"], url, timeout_s=5)
        client = SplitClient(split_export["edge"], url, timeout_s=5, fallback_local=True)
        r = client.run(image, Choice("c3", "int8"))
        assert r.ran == "fallback" and "mismatched" in r.error
        assert np.array_equal(r.logits[0], _whole(split_export, image[None])[0])


def test_garbage_answer_is_an_error(split_export, tail_app, helpers):
    from fastapi import FastAPI, Response

    from edgemap.split.server import TailServer

    info = TailServer(split_export["server"], threads=1).info()
    liar = FastAPI()
    liar.get("/info")(lambda: info)
    liar.post("/infer")(lambda: Response(b"\x00garbage", media_type="application/octet-stream",
                                         headers={"X-Model-Sha256": info["model_sha256"]}))
    with helpers.running(liar) as url:
        client = SplitClient(split_export["edge"], url, timeout_s=5)
        with pytest.raises(EdgemapError, match="not 3 logits"):
            client.run(split_export["images"].images[0], Choice("c3", "int8"))


def test_bad_options_and_servers_that_are_not_split_servers(split_export, helpers):
    """A mistake in the option is an error even with the local fallback; a server that answers /info with HTML or
    stalls on /infer, or answers NaN logits, is an error, or the fallback when asked for - within the deadline."""
    from fastapi import FastAPI, Response

    from edgemap.split.server import TailServer

    for bad, why in (("c3/bogus", "unknown encoding 'bogus' for an activation"), ("input/jpeg-qx", "number 1..100"),
                     ("input/png-q50", "quality .* is for input/jpeg"), ("c3", "give point/encoding")):
        with pytest.raises(EdgemapError, match=why):
            Choice.parse(bad)
    image = split_export["images"].images[0]
    info = TailServer(split_export["server"], threads=1).info()
    odd = FastAPI()
    odd.get("/info")(lambda: Response(b"<html>a web page</html>", media_type="text/html"))
    with helpers.running(odd) as url:
        with pytest.raises(EdgemapError, match="no split-point list: not a split server"):
            SplitClient(split_export["edge"], url, timeout_s=2)
    state = {"stall_s": 1.5}
    stall = FastAPI()
    stall.get("/info")(lambda: info)
    stall.post("/infer")(lambda: time.sleep(state["stall_s"]) or Response(
        np.full(3, np.nan, np.float32).tobytes(), headers={"X-Model-Sha256": info["model_sha256"]}))
    with helpers.running(stall) as url:
        client = SplitClient(split_export["edge"], url, timeout_s=0.5)
        fallback = SplitClient(split_export["edge"], url, timeout_s=0.5, fallback_local=True)
        t0 = time.monotonic()
        with pytest.raises(EdgemapError, match="did not answer within 0.5 s"):
            client.run(image, Choice("c3", "int8"))
        assert time.monotonic() - t0 < 1.4
        r = fallback.run(image, Choice("input", "png"))
        assert r.ran == "fallback" and "did not answer" in r.error
        assert np.array_equal(r.logits[0], _whole(split_export, image[None])[0])
        with pytest.raises(EdgemapError, match="unknown encoding 'int9'"):
            fallback.run(image, Choice("c3", "int9"))  # not hidden by the fallback
        state["stall_s"] = 0.0  # now it answers at once, with NaN logits
        with pytest.raises(EdgemapError, match="NaN or Inf"):
            client.run(image, Choice("c3", "int8"))
        assert "NaN" in fallback.run(image, Choice("c3", "int8")).error


def test_silent_server_times_out_and_down_server_falls_back(split_export, helpers):
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    port = silent.getsockname()[1]
    held = []
    threading.Thread(target=lambda: held.append(silent.accept()), daemon=True).start()
    t0 = time.monotonic()
    with pytest.raises(EdgemapError, match="did not answer within 0.5 s"):
        SplitClient(split_export["edge"], f"http://127.0.0.1:{port}", timeout_s=0.5)
    assert time.monotonic() - t0 < 3
    silent.close()
    down = f"http://127.0.0.1:{helpers.free_port()}"
    with pytest.raises(EdgemapError, match="unreachable"):
        SplitClient(split_export["edge"], down, timeout_s=1)
    client = SplitClient(split_export["edge"], down, timeout_s=1, fallback_local=True)
    assert client.run(split_export["images"].images[0], Choice("c2", "int8")).ran == "fallback"


def test_emulated_link_paces_bytes_and_delays_round_trips(split_export, tail_app, helpers):
    from edgemap.split.shaping import ShapedLink

    with helpers.running(tail_app) as url:
        port = int(url.rsplit(":", 1)[1])
        with ShapedLink("127.0.0.1", port, bandwidth_mbps=1.0, rtt_ms=40) as link:
            client = SplitClient(split_export["edge"], f"http://127.0.0.1:{link.port}", timeout_s=10)
            t0 = time.perf_counter()
            client.remote.request("GET", "/ping")
            ping = time.perf_counter() - t0
            t0 = time.perf_counter()
            client.remote.request("POST", "/probe", bytes(12_500))
            upload = time.perf_counter() - t0
            client.close()
            assert 0.04 <= ping < 1.0 and 0.14 <= upload < 2.0  # 100 kbit at 1 Mbps + 40 ms (upper bounds: a busy CI)
            assert link.bytes["up"] > 12_500


def test_adaptive_switches_when_the_link_changes(split_export, tail_app, helpers):
    from edgemap.split.adaptive import AdaptiveRunner
    from edgemap.split.planner import Network, emulated_device
    from edgemap.split.shaping import ShapedLink

    images = split_export["images"].images
    with helpers.running(tail_app) as url:
        port = int(url.rsplit(":", 1)[1])
        with ShapedLink("127.0.0.1", port, bandwidth_mbps=100, rtt_ms=2) as link:
            # an emulated device taking ~80 ms: slower than a request at 100 Mbps even when a loaded machine adds tens
            # of ms to it (at 30 ms, a load average of 8 on 2 cores sent 2 of 4 requests to the device), faster than any
            # request at 20 kbit/s (~250 ms)
            k = 80.0 / split_export["profile"]["whole"]["device"]["ms"]
            client = SplitClient(split_export["edge"], f"http://127.0.0.1:{link.port}", timeout_s=10, device_slowdown=k)
            client.profile = emulated_device(client.profile, k)
            runner = AdaptiveRunner(client, Network(100, 2), max_drop=100)
            ran = []
            for i in range(18):
                if i in (6, 12):
                    link.set(0.02 if i == 6 else 100, 2)  # 20 kbit/s: even 64 raw bytes + framing take > 100 ms
                r = runner.step(images[i % len(images)])
                assert not r.error
                ran.append(r.ran)
            client.close()
    assert ran[2:6].count("device") == 0                    # settled on the server once two requests measured
    assert "device" in ran[6:11] and ran[10] == "device"    # switched within 5 requests of the drop
    assert "device" not in ran[16:]                          # and back within 5 of the recovery


def test_edge_half_runs_without_torch(split_export):
    script = f"""
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ("torch", "fastapi", "uvicorn", "onnx"):
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)")
sys.meta_path.insert(0, NoTorch())
import numpy as np
from edgemap.split.client import SplitClient, Choice
from edgemap.split.adaptive import AdaptiveRunner
c = SplitClient({str(split_export['edge'])!r}, None, fallback_local=True)
r = c.run(np.zeros((8, 8, 1), np.uint8), Choice("c3", "int8-zstd"))
assert r.ran == "fallback", r
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_oversized_body_is_refused_before_reading(split_export, tail_app):
    from fastapi.testclient import TestClient

    from edgemap.split.server import MAX_BODY

    r = TestClient(tail_app).post("/infer", content=b"x", headers={"Content-Length": str(MAX_BODY + 1),
                                                                   "X-Model-Sha256": split_export["src"].sha256})
    assert r.status_code == 413


def test_planner_framing_bytes_match_the_wire(split_export, helpers):
    """The framing the planner adds to every request is what HTTP really adds, with and without a bearer token: the
    token's header crosses with every request, byte for byte, and the plan and the adaptive estimate count it."""
    from edgemap.split.adaptive import AdaptiveRunner
    from edgemap.split.planner import RESPONSE_HEADER_BYTES, Network, framing_bytes
    from edgemap.split.server import TailConfig, TailServer, create_app
    from edgemap.split.shaping import ShapedLink

    token = "t0k3n-" + "x" * 58  # 64 characters: an 88-byte header, far outside the +-40 B slack
    up_by = {}
    for tok in (None, token):
        app = create_app(TailServer(split_export["server"], threads=1), TailConfig(token=tok))
        with helpers.running(app) as url, ShapedLink("127.0.0.1", int(url.rsplit(":", 1)[1]), 10_000, 0) as link:
            client = SplitClient(split_export["edge"], f"http://127.0.0.1:{link.port}", timeout_s=10, token=tok)
            time.sleep(0.05)
            up0, down0 = link.bytes["up"], link.bytes["down"]
            r = client.run(split_export["images"].images[0], Choice("c3", "int8"))
            time.sleep(0.05)
            up_by[tok], down = link.bytes["up"] - up0 - r.bytes_up, link.bytes["down"] - down0 - r.bytes_down
            assert client.request_header_bytes == framing_bytes(tok)
            assert abs(up_by[tok] - client.request_header_bytes) <= 40 and abs(down - RESPONSE_HEADER_BYTES) <= 40
            runner = AdaptiveRunner(client, Network(10, 5))  # its probes pass the token check and measure the link
            assert runner.link.network() is not None and runner.network().request_header_bytes == framing_bytes(tok)
            client.close()
    assert up_by[token] - up_by[None] == framing_bytes(token) - framing_bytes(None) == len(f"Authorization: Bearer {token}\r\n")


def test_server_time_excludes_the_body_upload(split_export, tail_app, helpers):
    """X-Server-Ms is the server's own work: a body that arrives 0.4 s after its headers (a slow uplink; http.client
    sends bodies >= 2920 B apart from their headers) is not counted, or the edge would credit the link's time to
    the server and over-estimate the bandwidth."""
    body, headers = _infer_request(split_export)
    with helpers.running(tail_app) as url, socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as s:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        s.sendall(f"POST /infer HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode())
        time.sleep(0.4)
        s.sendall(body)
        s.settimeout(10)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += s.recv(4096)
    status, *lines = answer.split(b"\r\n\r\n")[0].decode().split("\r\n")
    server_ms = float(next(v for k, _, v in (line.partition(": ") for line in lines) if k.lower() == "x-server-ms"))
    assert " 200 " in status and server_ms < 200, (status, server_ms)


def _infer_request(split_export) -> tuple[bytes, dict]:
    body = np.zeros(4 * 8 * 8, np.float32).tobytes()
    return body, {"X-Model-Sha256": split_export["src"].sha256, "X-Split-Point": "c1", "X-Encoding": "fp32",
                  "X-Shape": "1,4,8,8"}


def test_tail_server_has_the_main_servers_probes_metrics_token_and_request_ids(split_export):
    from fastapi.testclient import TestClient

    from edgemap.split.server import TailConfig, TailServer, create_app

    token = "split-token-0123456789"
    app = create_app(TailServer(split_export["server"], threads=1), TailConfig(token=token))
    body, headers = _infer_request(split_export)
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as http:
        assert http.get("/healthz").status_code == 200 and http.get("/readyz").json()["status"] == "ready"
        assert http.post("/infer", content=body, headers=headers).status_code == 401
        assert http.get("/info").status_code == 401 and http.get("/metrics").status_code == 401
        r = http.post("/infer", content=body, headers={**headers, **auth, "X-Request-ID": "edge-42"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "edge-42" and len(r.content) == 3 * 4
        r = http.post("/infer", content=body, headers={**headers, **auth})
        assert "x-request-id" not in r.headers  # not added unasked: the planner counts the framing bytes
        assert http.post("/infer", content=body[:-4], headers={**headers, **auth}).status_code == 400
        text = http.get("/metrics", headers=auth).text
        assert 'edgemap_requests_total{code="200",path="/infer"} 2.0' in text
        assert 'edgemap_requests_total{code="401",path="/infer"} 1.0' in text
        assert 'edgemap_rejected_requests_total{reason="bad_body"} 1.0' in text
        assert "edgemap_inference_seconds_count 2.0" in text and "edgemap_model_load_seconds" in text
        assert http.get("/docs/assets/swagger-ui.css").status_code == 200


def test_split_serve_over_tls_with_a_token_times_out_a_stalled_body_and_stops_on_sigterm(split_export, tmp_path, helpers):
    import ssl

    import httpx

    from tests.deploy.test_serve_options import self_signed
    from tests.deploy.test_serve_process import stop_gracefully

    cert, key = self_signed(tmp_path)
    (tmp_path / "token").write_text("split-cli-token-0123456789\n")
    port = helpers.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "edgemap.cli", "split", "serve", str(split_export["server"]),
                             "--port", str(port), "--threads", "1", "--timeout", "1", "--tls-cert", str(cert),
                             "--tls-key", str(key), "--token-file", str(tmp_path / "token")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    context = ssl.create_default_context(cafile=str(cert))
    body, headers = _infer_request(split_export)
    try:
        with httpx.Client(verify=context, timeout=10) as http:
            deadline = time.time() + 60
            while True:
                assert proc.poll() is None and time.time() < deadline, proc.communicate()[1]
                try:
                    if http.get(f"https://127.0.0.1:{port}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            assert http.post(f"https://127.0.0.1:{port}/infer", content=body, headers=headers).status_code == 401
            headers["Authorization"] = "Bearer split-cli-token-0123456789"
            assert http.post(f"https://127.0.0.1:{port}/infer", content=body, headers=headers).status_code == 200
        url = f"https://127.0.0.1:{port}"  # edgemap's own edge client: TLS against the given certificate, the token
        with pytest.raises(EdgemapError, match="wants a bearer token"):
            SplitClient(split_export["edge"], url, timeout_s=10, ca_file=cert)
        with pytest.raises(EdgemapError, match="unreachable.*SSLCertVerificationError"):
            SplitClient(split_export["edge"], url, timeout_s=10, token="split-cli-token-0123456789")  # system CAs only
        client = SplitClient(split_export["edge"], url, timeout_s=10, ca_file=cert, token="split-cli-token-0123456789")
        try:
            image = np.zeros((32, 32, 3), np.uint8)
            for point in ("input", next(iter(client.heads))):
                assert client.run(image, Choice(point, "raw" if point == "input" else "int8")).ran == (
                    "server" if point == "input" else "split")
            # back-to-back requests answer in ~1 ms: without TCP_NODELAY on the served connections, each answer's
            # second segment waited for the client's delayed ACK, >= 40 ms every time
            assert min(client.run(image, Choice("input", "raw")).total_ms for _ in range(5)) < 30
        finally:
            client.close()
        with context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1") as s:
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            s.sendall(f"POST /infer HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode() + body[:10])
            s.settimeout(10)
            t0 = time.monotonic()
            answer = s.recv(4096)  # the rest of the body never comes
            while not answer.endswith(b"}"):
                answer += s.recv(4096)
            assert answer.startswith(b"HTTP/1.1 408") and b"reading the body" in answer, answer
            assert 0.8 < time.monotonic() - t0 < 5
        _, err = stop_gracefully(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert f"on https://127.0.0.1:{port}" in err and "SIGTERM: stopped" in err
