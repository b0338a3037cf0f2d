"""What a data reference holds, as a digest of its contents: part of the cache key of every pass that reads data, so
a data set changed at the same path never reuses an artifact (or a search trial) made from the old one.

The digest is sha256 over every file under the reference (a .npz, an image folder, a CIFAR-10 folder): relative
name, size and bytes. Hashing a 30,000-image folder takes seconds, so it is done once: the digest is kept in this
process and in a small JSON file (EDGEMAP_DIGEST_CACHE, default ~/.cache/edgemap/data-digests.json) under the
folder's listing (names, sizes, modification times); a listing that changed is hashed again. A Ray worker, which
has none of the driver's files, is told the driver's digests (`known`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from edgemap.core.atomic import write_json
from edgemap.errors import EdgemapError

CHUNK = 1 << 20
_KNOWN: dict[str, str] = {}  # reference -> digest given by the driver (a worker cannot read the files)
_MEMO: dict[tuple[str, str], str] = {}  # (absolute path, listing digest) -> content digest, this process


def cache_file() -> Path:
    """Where digests are kept between processes."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgemap" / "data-digests.json"
    return Path(os.environ.get("EDGEMAP_DIGEST_CACHE", default))


def known(digests: dict[str, str]) -> None:
    """Take these reference -> digest pairs as given (from the driver that could read the files)."""
    _KNOWN.update(digests)


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


def _listing_digest(path: Path, files: list[Path]) -> str:
    """Names, sizes and modification times: cheap, and it changes whenever a file is rewritten."""
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(path) if p != path else p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _content_digest(path: Path, files: list[Path]) -> str:
    h = hashlib.sha256()
    for p in files:
        h.update(f"{p.relative_to(path) if p != path else ''}\0{p.stat().st_size}\n".encode())
        with open(p, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
    return h.hexdigest()


def data_digest(ref: str | Path) -> str:
    """sha256 (hex, 16 characters) of what the data reference holds; a missing path is a one-line error."""
    if str(ref) in _KNOWN:
        return _KNOWN[str(ref)]
    path = Path(ref).resolve()
    if not path.exists():
        raise EdgemapError(f"{ref}: data not found")
    files = _files(path)
    listing = _listing_digest(path, files)
    if (str(path), listing) in _MEMO:
        return _MEMO[(str(path), listing)]
    stored = _read_cache()
    entry = stored.get(str(path))
    if entry and entry.get("listing") == listing:
        digest = entry["digest"]
    else:
        digest = _content_digest(path, files)[:16]
        stored[str(path)] = {"listing": listing, "digest": digest}
        _write_cache(stored)
    _MEMO[(str(path), listing)] = digest
    return digest


def _read_cache() -> dict:
    try:
        data = json.loads(cache_file().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # no cache yet, or an unreadable one: hash again


def _write_cache(stored: dict) -> None:
    """Write the digests back, forgetting data that is gone (test folders, moved data sets)."""
    try:
        write_json(cache_file(), {k: v for k, v in stored.items() if Path(k).exists()})
    except OSError:
        pass  # a read-only home: the digest is still right, only computed again next time
