"""`edgemap serve` options around the app: offline /docs, TLS (--tls-cert/--tls-key) and --workers N."""

import datetime
import json
import os
import signal
import ssl
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from edgemap.data.sample import load_sample
from edgemap.deploy.server import ServeConfig, create_app
from edgemap.deploy.serving import Listen
from edgemap.errors import EdgemapError

from tests.deploy.test_serve_process import EDGE_CLI, free_port, stop_gracefully

TOKEN = "docs-token-0123456789"


def self_signed(folder, host: str = "127.0.0.1") -> tuple:
    """A self-signed certificate for `host` and its key (PEM files), made with cryptography."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_docs_use_only_local_assets_that_answer_even_behind_a_token(bundle):
    import re

    with TestClient(create_app(bundle, ServeConfig(token=TOKEN))) as client:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        page = client.get("/docs", headers=auth)
        assert page.status_code == 200 and "SwaggerUIBundle" in page.text
        urls = re.findall(r'(?:src|href|url)\s*[=:]\s*["\']([^"\']+)["\']', page.text)
        assert len(urls) >= 4 and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
        assert "http" not in page.text.lower().replace("http-equiv", "")  # no CDN, no online validator
        for url in urls:
            r = client.get(url) if url.startswith("/docs/assets/") else client.get(url, headers=auth)
            assert r.status_code == 200 and len(r.content) > 100, url  # the assets are open: public files
        assert client.get("/docs/assets/swagger-ui-bundle.js").headers["content-type"].startswith("application/javascript")
        assert client.get("/openapi.json", headers=auth).json()["openapi"].startswith("3.")
        assert client.get("/docs").status_code == 401 and client.get("/redoc", headers=auth).status_code == 404


def test_tls_files_are_checked_with_one_line_errors(tmp_path):
    cert, key = self_signed(tmp_path)
    assert Listen(tls_cert=cert, tls_key=key).url() == "https://127.0.0.1:8000"
    (tmp_path / "junk.pem").write_text("not a certificate")
    other = tmp_path / "other"
    other.mkdir()
    other_cert, _ = self_signed(other)
    with pytest.raises(EdgemapError, match="go together"):
        Listen(tls_cert=cert)
    with pytest.raises(EdgemapError, match="--tls-key .*missing.pem: file not found"):
        Listen(tls_cert=cert, tls_key=tmp_path / "missing.pem")
    with pytest.raises(EdgemapError, match="not a usable PEM certificate"):
        Listen(tls_cert=tmp_path / "junk.pem", tls_key=key)
    with pytest.raises(EdgemapError, match="not a usable PEM certificate"):
        Listen(tls_cert=other_cert, tls_key=key)  # the key of another certificate
    r = subprocess.run([sys.executable, "-m", "edgemap.cli", "serve", "no-such-bundle", "--tls-cert",
                        str(tmp_path / "junk.pem"), "--tls-key", str(key)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not a usable PEM certificate" in r.stderr


def _start(args: list, port: int, store=None) -> subprocess.Popen:  # noqa: ANN001
    env = {**os.environ, "EDGEMAP_STORE": str(store) if store else "off"}
    return subprocess.Popen([sys.executable, EDGE_CLI, "serve", *args, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait(client: httpx.Client, url: str, proc: subprocess.Popen) -> None:
    deadline = time.time() + 90
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if client.get(f"{url}/readyz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("server did not become ready")


def test_https_with_a_self_signed_certificate_the_client_trusts(bundle, encode, classes, tmp_path):
    cert, key = self_signed(tmp_path)
    port = free_port()
    proc = _start([str(bundle), "--tls-cert", str(cert), "--tls-key", str(key)], port)
    try:
        with httpx.Client(verify=ssl.create_default_context(cafile=str(cert)), timeout=10) as client:
            _wait(client, f"https://127.0.0.1:{port}", proc)
            r = client.post(f"https://127.0.0.1:{port}/v1/predict", content=encode(load_sample().images[0]))
            assert r.status_code == 200 and r.json()["predictions"][0]["top1"] in classes
        with httpx.Client(timeout=10) as untrusting:  # the system's CAs do not know this certificate
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                untrusting.get(f"https://127.0.0.1:{port}/healthz")
        with pytest.raises(httpx.TransportError):  # plain HTTP on the TLS port gets no answer
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).raise_for_status()
        out, err = stop_gracefully(proc, timeout_s=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert f"https://127.0.0.1:{port}" in err and "torch never imported" in out


def test_workers_share_one_port_metrics_reload_records_and_stop_gracefully(bundle, encode, classes, tmp_path):
    from edgemap.results import open_store
    from edgemap.results.predictions import bundle_sha256
    from edgemap.results.queries import predictions, request_errors

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start([str(bundle), "--workers", "2"], port, store=tmp_path / "store.db")
    try:
        with httpx.Client(timeout=10) as client:
            _wait(client, url, proc)
            image = encode(load_sample().images[0])
            for _ in range(6):  # a new connection each: the kernel hands them to either worker
                with httpx.Client(timeout=10) as one:
                    r = one.post(f"{url}/v1/predict", content=image)
                    assert r.status_code == 200 and r.json()["predictions"][0]["top1"] in classes
            assert client.post(f"{url}/v1/predict", content=b"junk").status_code == 400
            proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 30
            while 'edgemap_reloads_total{result="ok"} 2.0' not in (text := client.get(f"{url}/metrics").text):
                assert time.time() < deadline, text
                time.sleep(0.3)
            pids = {line.split('pid="')[1].split('"')[0] for line in text.splitlines()
                    if line.startswith("edgemap_model_load_seconds{")}
            assert len(pids) == 2  # both workers loaded the model and write their metrics
            assert 'edgemap_requests_total{code="200",path="/v1/predict"} 6.0' in text  # summed over workers
            assert 'edgemap_requests_total{code="400",path="/v1/predict"} 1.0' in text
            assert json.loads(client.get(f"{url}/readyz").text)["status"] == "ready"
        out, err = stop_gracefully(proc, timeout_s=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "2 workers stopped after finishing in-flight requests" in err and err.count("reloaded") == 2
    assert "torch never imported" in out
    store = open_store(tmp_path / "store.db", read_only=True)  # one writer per worker, one store
    assert len(predictions(store, bundle_sha256(bundle))) == 6 and len(request_errors(store, bundle_sha256(bundle))) == 1


def test_workers_refuse_a_bundle_that_does_not_load_in_one_line(tmp_path):
    (tmp_path / "manifest.json").write_text("{}")
    r = subprocess.run([sys.executable, EDGE_CLI, "serve", str(tmp_path), "--workers", "2", "--port",
                        str(free_port())], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("edgemap: error: worker ") and "could not start" in r.stderr
