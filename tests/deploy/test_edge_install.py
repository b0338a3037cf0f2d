"""The edge install: a fresh virtual environment with requirements/edge.txt only (no torch) runs `infer` and
`serve` on an ONNX Runtime bundle. Slow (about a minute: pip installs ~250 MB); deselect with
`-m "not edge_install"`. `make test` runs it."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from edgemap.data.sample import load_sample
from tests.deploy.test_serve_process import stop_gracefully

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.edge_install
def test_fresh_edge_venv_without_torch_runs_infer_and_serve(bundle, tmp_path, encode, classes):
    venv = tmp_path / "edge-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = str(venv / "bin" / "python")
    r = subprocess.run([py, "-m", "pip", "install", "-q", "-r", str(REPO / "requirements" / "edge.txt")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    # edgemap itself from this checkout (not installed: building it would write into the source tree)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    probe = subprocess.run([py, "-c", "import importlib.util as u; print(u.find_spec('torch') is None)"],
                           capture_output=True, text=True, env=env, timeout=60)
    assert probe.stdout.strip() == "True", "torch must not be installed in the edge environment"
    (tmp_path / "x.png").write_bytes(encode(load_sample().images[3]))
    r = subprocess.run([py, "-m", "edgemap.cli", "infer", str(bundle), str(tmp_path / "x.png"), "--json"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["top1"] in classes
    port = free_port()
    proc = subprocess.Popen([py, "-m", "edgemap.cli", "serve", str(bundle), "--port", str(port)],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        answer = _post_when_ready(port, (tmp_path / "x.png").read_bytes(), proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/docs/assets/swagger-ui-bundle.js", timeout=10) as js:
            assert js.status == 200 and len(js.read()) > 100_000  # /docs works offline: Swagger UI is installed
        stop_gracefully(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert answer["predictions"][0]["top1"] == json.loads(r.stdout)["top1"]
    size_mb = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file()) / 1e6
    print(f"edge venv installed size: {size_mb:.0f} MB")


def _post_when_ready(port: int, body: bytes, proc: subprocess.Popen) -> dict:
    deadline = time.time() + 60
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/predict", data=body,
                                         headers={"Content-Type": "image/png"})
            with urllib.request.urlopen(req, timeout=5) as resp:
                return json.loads(resp.read())
        except OSError:
            time.sleep(0.3)
    raise AssertionError("edge server did not answer")
