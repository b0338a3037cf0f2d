"""`edgemap deploy`: atomic install beside the old version, self-test before the swap, rollback."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from edgemap.deploy.bundle import sha256
from edgemap.deploy.edge import EdgeModel
from edgemap.deploy.install import install, rollback, status
from edgemap.deploy.bundle import sign_bundle
from edgemap.deploy.signing import generate_keypair
from edgemap.errors import EdgemapError


def failing_selftest_copy(bundle, dest):
    """A bundle whose hashes are right but whose self-test the device cannot reproduce."""
    b = shutil.copytree(bundle, dest)
    with np.load(b / "selftest.npz") as z:
        images, logits = z["images"], z["logits"]
    np.savez_compressed(b / "selftest.npz", images=images, logits=np.roll(logits, 1, axis=1))
    m = json.loads((b / "manifest.json").read_text())
    m["files"]["selftest.npz"] = {"sha256": sha256(b / "selftest.npz"), "bytes": (b / "selftest.npz").stat().st_size}
    (b / "manifest.json").write_text(json.dumps(m))
    return b


def test_install_swap_and_rollback(bundle, tmp_path):
    dev = tmp_path / "dev"
    first = install(bundle, dev)
    assert os.readlink(dev / "current") == f"releases/{first['release']}" and first["previous"] is None
    second = install(bundle, dev)
    assert second["previous"] == first["release"] and status(dev)["current"] == second["release"]
    assert EdgeModel(dev / "current").selftest["top1_agreement"] == 1.0  # DIR/current is a bundle
    back = rollback(dev)
    assert status(dev) == {"current": first["release"], "previous": second["release"],
                           "releases": sorted([first["release"], second["release"]])}
    assert back["action"] == "rollback"
    rollback(dev)  # a second rollback undoes the first
    assert status(dev)["current"] == second["release"]
    assert len((dev / "deploy.log.jsonl").read_text().splitlines()) == 4


def test_failed_selftest_leaves_the_old_version(bundle, tmp_path):
    dev = tmp_path / "dev"
    first = install(bundle, dev)
    bad = failing_selftest_copy(bundle, tmp_path / "bad")
    with pytest.raises(EdgemapError, match=f"install refused, .*current left at releases/{first['release']}.*self-test failed"):
        install(bad, dev)
    assert status(dev) == {"current": first["release"], "previous": None, "releases": [first["release"]]}
    assert not [p for p in (dev / "releases").iterdir() if p.name.startswith(".")]  # no staging left over


def test_signed_install_and_old_releases_pruned(bundle, tmp_path):
    b = shutil.copytree(bundle, tmp_path / "b")
    priv, pub = generate_keypair(tmp_path / "k")
    dev = tmp_path / "dev"
    with pytest.raises(EdgemapError, match="not signed"):
        install(b, dev, public_key=pub)
    sign_bundle(b, priv)
    for _ in range(5):
        rec = install(b, dev, public_key=pub)
    assert rec["signed"] and (dev / "current" / "signature.json").is_file()
    assert len(status(dev)["releases"]) == 3  # current, previous and one more
    EdgeModel(dev / "current", public_key=pub)


def test_rollback_without_previous_and_foreign_current(bundle, tmp_path):
    dev = tmp_path / "dev"
    with pytest.raises(EdgemapError, match="no previous version"):
        rollback(dev)
    (dev).mkdir()
    (dev / "current").mkdir()
    with pytest.raises(EdgemapError, match="not a link made by `edgemap deploy`"):
        install(bundle, dev)


def test_cli_deploy(bundle, tmp_path):
    cli = [sys.executable, "-m", "edgemap.cli", "deploy"]
    r = subprocess.run(cli + [str(bundle), "--to", str(tmp_path / "dev")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)["action"] == "install"
    r = subprocess.run(cli + ["--rollback", str(tmp_path / "dev")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no previous version" in r.stderr
    r = subprocess.run(cli + [str(bundle)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--to DIR" in r.stderr


def test_concurrent_installs_take_turns(bundle, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    dev = tmp_path / "dev"
    with ThreadPoolExecutor(3) as pool:
        records = list(pool.map(lambda _: install(bundle, dev), range(3)))
    st = status(dev)
    # each install saw the one before it: the chain of 'previous' names has no gaps or repeats
    assert sorted(r["previous"] or "" for r in records)[1:] == sorted(r["release"] for r in records if r["release"] != st["current"])
    assert st["previous"] == next(r["previous"] for r in records if r["release"] == st["current"])
