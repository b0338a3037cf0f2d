"""Atomic installs of bundles into a device directory, with the previous version kept for a rollback.

    DIR/
      current -> releases/<id>     what a server or `infer` opens (DIR/current is a bundle)
      previous -> releases/<id>    the version before; `edgemap deploy --rollback DIR` swaps back to it
      releases/<id>/               one verified copy per installed version (older ones pruned)
      deploy.log.jsonl             one line per install / rollback

The new version is copied beside the old one, verified (hashes, signature with a public key) and
self-tested from its installed copy; only then is `current` switched, by renaming a new link over it,
which is atomic: a reader sees the old version or the new one, never a mix or nothing. A failed check
deletes the new copy and leaves `current` as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from edgemap.deploy.bundle import member_path, read_manifest
from edgemap.deploy.signing import SIGNATURE_FILE as SIGNATURE_FILE_NAME
from edgemap.errors import EdgemapError

KEEP_RELEASES = 3  # current, previous and one more; older copies are deleted after a successful install


@contextmanager
def _locked(target: Path) -> Iterator[None]:
    """One install or rollback at a time per device directory (a second one waits)."""
    import fcntl

    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".deploy.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def install(bundle: str | Path, target: str | Path, public_key: str | Path | None = None, threads: int = 0) -> dict:
    """Install `bundle` into the device directory `target`; returns a record of what happened."""
    with _locked(Path(target)):
        return _install(Path(bundle), Path(target), public_key, threads)


def _install(bundle: Path, target: Path, public_key: str | Path | None, threads: int) -> dict:
    from edgemap.deploy.edge import EdgeModel

    manifest = read_manifest(bundle, public_key)  # fail early, before copying anything
    releases = target / "releases"
    releases.mkdir(parents=True, exist_ok=True)
    release_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{_manifest_digest(bundle)[:12]}"
    staging = Path(tempfile.mkdtemp(dir=releases, prefix=f".{release_id}."))
    try:
        _copy_members(bundle, staging, manifest)
        staging.chmod(0o755)
        final = _unique(releases / release_id)
        staging.rename(final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    try:
        model = EdgeModel(final, threads=threads, public_key=public_key)  # hashes + signature + self-test, installed copy
        selftest = model.selftest
        model.close()
    except EdgemapError as exc:
        shutil.rmtree(final)
        old = _link_target(target / "current")
        raise EdgemapError(f"install refused, {target}/current left at {old or 'nothing'}: {exc}") from None
    old = _link_target(target / "current")
    if old is not None:
        _swap_link(target / "previous", old)
    _swap_link(target / "current", final.relative_to(target))
    record = {"action": "install", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "release": final.name,
              "source": str(bundle.resolve()), "backend": manifest["backend"], "previous": old.name if old else None,
              "signed": public_key is not None, "selftest": selftest}
    _log(target, record)
    _prune(target)
    return record


def rollback(target: str | Path) -> dict:
    """Point `current` back at `previous` (and `previous` at what was current): a second rollback undoes it."""
    target = Path(target)
    if not target.is_dir():
        raise EdgemapError(f"{target}: no previous version to roll back to (not a device directory)")
    with _locked(target):
        return _rollback(target)


def _rollback(target: Path) -> dict:
    cur, prev = _link_target(target / "current"), _link_target(target / "previous")
    if prev is None or not (target / prev).is_dir():
        raise EdgemapError(f"{target}: no previous version to roll back to (install at least twice first)")
    read_manifest(target / prev)
    _swap_link(target / "current", prev)
    if cur is not None:
        _swap_link(target / "previous", cur)
    record = {"action": "rollback", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "release": prev.name,
              "previous": cur.name if cur else None}
    _log(target, record)
    return record


def status(target: str | Path) -> dict:
    """Which releases `current` and `previous` point at."""
    target = Path(target)
    cur, prev = _link_target(target / "current"), _link_target(target / "previous")
    return {"current": cur.name if cur else None, "previous": prev.name if prev else None,
            "releases": sorted(p.name for p in (target / "releases").glob("[!.]*"))}


def _copy_members(bundle: Path, dest: Path, manifest: dict) -> None:
    """Copy exactly the files the manifest names (+ manifest and signature), refusing links."""
    names = list(manifest["files"]) + ["manifest.json"]
    if (bundle / SIGNATURE_FILE_NAME).is_file():
        names.append(SIGNATURE_FILE_NAME)
    for name in names:
        src = member_path(bundle, name)
        if not src.is_file():
            raise EdgemapError(f"{src}: listed in the manifest but missing")
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest / name)


def _manifest_digest(bundle: Path) -> str:
    import hashlib

    return hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()


def _unique(path: Path) -> Path:
    n, candidate = 1, path
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def _link_target(link: Path) -> Path | None:
    """Where a release link points (relative to the device directory), or None."""
    if not link.is_symlink():
        if link.exists():
            raise EdgemapError(f"{link}: exists but is not a link made by `edgemap deploy`; refusing to replace it")
        return None
    return Path(os.readlink(link))


def _swap_link(link: Path, points_to: Path) -> None:
    """Make `link` point at `points_to` atomically: a new link renamed over the old one."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(points_to, tmp)
    os.replace(tmp, link)


def _log(target: Path, record: dict) -> None:
    with open(target / "deploy.log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _prune(target: Path) -> None:
    keep = {p.name for p in (_link_target(target / "current"), _link_target(target / "previous")) if p}
    old = sorted((p for p in (target / "releases").glob("[!.]*") if p.name not in keep), key=lambda p: p.name)
    for p in old[:max(0, len(old) - (KEEP_RELEASES - len(keep)))]:
        shutil.rmtree(p)
