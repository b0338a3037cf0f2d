"""Bundle safety: Ed25519 signatures, every used file hashed, names confined to the bundle, links refused."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from edgemap.deploy.bundle import read_manifest, sha256
from edgemap.deploy.edge import EdgeModel
from edgemap.deploy.bundle import sign_bundle
from edgemap.deploy.signing import generate_keypair
from edgemap.errors import EdgemapError


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    return generate_keypair(d / "signer")


@pytest.fixture
def signed(bundle, keys, tmp_path):
    b = shutil.copytree(bundle, tmp_path / "signed")
    sign_bundle(b, keys[0])
    return b


def rehash(b, name):
    """What an attacker without the key can do: change a file and fix its hash in the manifest."""
    m = json.loads((b / "manifest.json").read_text())
    m["files"][name] = {"sha256": sha256(b / name), "bytes": (b / name).stat().st_size}
    (b / "manifest.json").write_text(json.dumps(m))


def test_signed_bundle_loads_with_the_public_key(signed, keys):
    assert EdgeModel(signed, public_key=keys[1]).selftest["top1_agreement"] == 1.0
    assert oct(keys[0].stat().st_mode & 0o777) == "0o600"


def test_rehashed_tampering_passes_hashes_but_not_the_signature(signed, keys):
    data = bytearray((signed / "model.onnx").read_bytes())
    data[-10] ^= 0xFF
    (signed / "model.onnx").write_bytes(bytes(data))
    rehash(signed, "model.onnx")
    read_manifest(signed)  # without a key the hashes agree again: only the signature can tell
    with pytest.raises(EdgemapError, match="signature check failed: the manifest was modified after signing"):
        EdgeModel(signed, public_key=keys[1])


def test_unsigned_and_other_key_are_refused(bundle, signed, keys, tmp_path):
    with pytest.raises(EdgemapError, match="bundle is not signed"):
        EdgeModel(bundle, public_key=keys[1])
    _, other_pub = generate_keypair(tmp_path / "other")
    with pytest.raises(EdgemapError, match="signed by another key"):
        EdgeModel(signed, public_key=other_pub)
    (signed / "signature.json").write_text("{\"algorithm\": \"ed25519\", \"signature\": \"@@@\"}")
    with pytest.raises(EdgemapError, match="not a valid edgemap Ed25519 signature"):
        EdgeModel(signed, public_key=keys[1])
    with pytest.raises(EdgemapError, match="not a PEM public key"):
        EdgeModel(signed, public_key=keys[0])


def test_keygen_refuses_to_overwrite(keys):
    with pytest.raises(EdgemapError, match="already exists"):
        generate_keypair(keys[0])


@pytest.mark.parametrize("name", ["/etc/passwd", "../outside.onnx", "a/../../x", "C:/x", "a\\..\\x", ""])
def test_names_escaping_the_bundle_are_refused(bundle, tmp_path, name):
    b = shutil.copytree(bundle, tmp_path / "b")
    m = json.loads((b / "manifest.json").read_text())
    m["files"][name] = {"sha256": "0" * 64, "bytes": 1}
    (b / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(EdgemapError, match="escapes the bundle|plain relative name"):
        read_manifest(b)


def test_model_must_be_hashed(bundle, tmp_path):
    b = shutil.copytree(bundle, tmp_path / "b")
    m = json.loads((b / "manifest.json").read_text())
    del m["files"]["model.onnx"]
    (b / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(EdgemapError, match="model.onnx not hashed"):
        read_manifest(b)


def test_links_inside_the_bundle_are_refused(bundle, tmp_path):
    b = shutil.copytree(bundle, tmp_path / "b")
    shutil.move(b / "model.onnx", tmp_path / "elsewhere.onnx")
    os.symlink(tmp_path / "elsewhere.onnx", b / "model.onnx")  # same bytes, so the hash would pass
    with pytest.raises(EdgemapError, match="a link inside the bundle"):
        EdgeModel(b)


def test_cli_sign_and_verify(bundle, tmp_path):
    b = shutil.copytree(bundle, tmp_path / "b")
    cli = [sys.executable, "-m", "edgemap.cli"]
    r = subprocess.run(cli + ["bundle", "keygen", str(tmp_path / "k")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(cli + ["bundle", "verify", str(b), "--public-key", str(tmp_path / "k.pub")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "not signed" in r.stderr and "Traceback" not in r.stderr
    subprocess.run(cli + ["bundle", "sign", str(b), "--key", str(tmp_path / "k")], check=True, timeout=60)
    r = subprocess.run(cli + ["bundle", "verify", str(b), "--public-key", str(tmp_path / "k.pub")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "signature valid" in r.stdout


def test_serve_and_infer_refuse_an_unsigned_bundle_with_a_public_key(bundle, signed, keys, tmp_path, encode):
    from edgemap.data.sample import load_sample
    from edgemap.deploy.server import ServeConfig, create_app

    with pytest.raises(EdgemapError, match="bundle is not signed"):
        create_app(bundle, ServeConfig(public_key=keys[1]))
    create_app(signed, ServeConfig(public_key=keys[1]))
    (tmp_path / "x.png").write_bytes(encode(load_sample().images[0]))
    r = subprocess.run([sys.executable, "-m", "edgemap.cli", "infer", str(bundle), str(tmp_path / "x.png"),
                        "--public-key", str(keys[1])], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "not signed" in r.stderr
