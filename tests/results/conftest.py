"""A fresh store per test, and the CLI as a user meets it (a subprocess, exit status, stderr)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


def edgemap(*args: str, store: Path | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`edgemap ARGS` in a subprocess against `store` (EDGEMAP_STORE)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if store is not None:
        env["EDGEMAP_STORE"] = str(store)
    return subprocess.run([sys.executable, "-m", "edgemap.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


@pytest.fixture
def cli():  # noqa: ANN201 - the edgemap() helper, for test modules (importlib import mode: no conftest imports)
    return edgemap
