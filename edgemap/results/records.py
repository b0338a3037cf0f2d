"""What one run is: provenance (command, commit, model and parent hashes), settings, metrics, evidence."""

from __future__ import annotations

import hashlib
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

BASES = ("measured", "estimated")


@dataclass(frozen=True)
class Metric:
    """One figure of a run. `subject` names what it is about inside the run ('' = the run's own model:
    a map run has one subject per candidate); `basis` is 'measured' on this host or 'estimated'."""

    name: str
    value: float | None
    unit: str = ""
    basis: str = "measured"
    subject: str = ""

    def __post_init__(self) -> None:
        if self.basis not in BASES:
            raise ValueError(f"metric {self.name}: basis must be one of {BASES}, got {self.basis!r}")


@dataclass
class RunRecord:
    """A run as the store keeps it; `payload` is the command's whole result (JSON-ready), for reports."""

    command: str
    metrics: list[Metric] = field(default_factory=list)
    model: str | None = None
    model_sha256: str | None = None
    parent_sha256: str | None = None
    recipe: dict | None = None
    device: str | None = None
    backend: str | None = None
    evidence: dict | None = None
    payload: dict | None = None
    label: str | None = None
    command_line: str | None = None
    source: str | None = None  # the file an imported run came from (imports are idempotent on it)
    created_at: str | None = None
    group_id: str | None = None
    edgemap_commit: str | None = None
    id: str = field(default_factory=lambda: new_run_id())


def new_run_id(when: float | None = None) -> str:
    """Sortable and unique across processes: UTC time to the second + 6 random hex digits."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(when)) + "-" + secrets.token_hex(3)


def utc_now() -> str:
    """ISO-8601 UTC time with seconds, as stored."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def current_command_line() -> str:
    """The command as the user typed it (argv[0] shortened to its name)."""
    name = Path(sys.argv[0]).name
    return " ".join(["edgemap" if name in ("cli.py", "edgemap", "__main__.py") else name or "python"] + sys.argv[1:])


@lru_cache(maxsize=1)
def edgemap_commit() -> str | None:
    """The git commit of the edgemap source in use (+'-dirty' with local changes); None outside a checkout."""
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=40"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def file_sha256(path: str | Path | None) -> str | None:
    """sha256 of a model file as its Artifact digests it (a checkpoint with its .json sidecar, an OpenVINO .xml with
    its .bin), or of a folder's files in name order (bundles); None when absent."""
    if path is None:
        return None
    path = Path(path)
    if path.is_file():  # the digest edgemap.core.artifact gives the same model (sidecars included): runs and artifacts match
        from edgemap.core.artifact import SUFFIX, file_sha256 as artifact_digest, model_files

        fmt = {suffix: name for name, suffix in SUFFIX.items()}.get(path.suffix, "file")
        return artifact_digest([f for f in model_files(path, fmt) if f.is_file()])
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
    else:
        return None
    h = hashlib.sha256()
    for f in files:
        if len(files) > 1:
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()
