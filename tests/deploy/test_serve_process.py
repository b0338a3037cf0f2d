"""`edgemap serve` as a real process on loopback, torch blocked: serves, and on SIGTERM finishes the request
in flight, refuses new connections and exits 0."""

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from edgemap.data.sample import load_sample

EDGE_CLI = str(Path(__file__).with_name("edge_cli.py"))  # the CLI with torch blocked


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_gracefully(proc: subprocess.Popen, timeout_s: float = 30) -> tuple:
    """SIGTERM a server, wait for it to exit and assert it exited 0; returns its (stdout, stderr), None where not piped."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"still running {timeout_s} s after SIGTERM: {err}") from None
    assert proc.returncode == 0, err
    return out, err


def wait_ready(port: int, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("server did not become ready")


def test_sigterm_finishes_in_flight_request_and_exits_0(bundle, encode, classes):
    port = free_port()
    proc = subprocess.Popen([sys.executable, EDGE_CLI, "serve", str(bundle), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(port, proc)
        body = encode(load_sample().images[0])
        conn = socket.create_connection(("127.0.0.1", port))
        conn.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: t\r\nContent-Type: image/png\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:20])
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert proc.poll() is None  # still draining: one request is in flight
        conn.sendall(body[20:])
        conn.settimeout(20)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < 10:
            answer += conn.recv(65536)
        head, payload = answer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200"), head
        conn.close()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "torch never imported" in out
    assert "SIGTERM" in err
    assert payload.startswith(b"{") and json.loads(payload[: payload.rindex(b"}") + 1])["predictions"][0]["top1"] in classes


def test_port_in_use_is_one_line_error(bundle):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "edgemap.cli", "serve", str(bundle), "--port", str(port)],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("edgemap: error: cannot listen on")


def _get_json(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.loads(r.read())


def _wait_for(predicate, timeout_s: float = 30) -> bool:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_sighup_reloads_a_new_deploy_and_keeps_serving_when_it_is_broken(bundle, tmp_path, encode):
    import os
    import shutil

    from edgemap.deploy.install import install

    dev = tmp_path / "dev"
    first = install(bundle, dev)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "edgemap.cli", "serve", str(dev / "current"), "--port", str(port)],
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(port, proc)
        assert _get_json(port, "/v1/model")["loaded_from"].endswith(first["release"])
        second = install(bundle, dev)
        proc.send_signal(signal.SIGHUP)
        assert _wait_for(lambda: _get_json(port, "/v1/model")["loaded_from"].endswith(second["release"]))
        broken = shutil.copytree(bundle, dev / "releases" / "broken")
        (broken / "model.onnx").write_bytes(b"not a model")
        os.symlink("releases/broken", dev / "tmp-link")
        os.replace(dev / "tmp-link", dev / "current")
        proc.send_signal(signal.SIGHUP)
        metrics = lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()  # noqa: E731
        assert _wait_for(lambda: 'edgemap_reloads_total{result="failed"} 1.0' in metrics())
        assert _get_json(port, "/v1/model")["loaded_from"].endswith(second["release"])  # the old model still serves
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/predict", data=encode(load_sample().images[1]))
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
        _, err = stop_gracefully(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "reload refused" in err
