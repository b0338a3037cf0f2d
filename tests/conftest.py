"""Shared fixtures: real CIFAR-10 when the shared copy is present, tiny generated data otherwise."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10"


def make_batch(n: int, seed: int) -> dict:
    """A CIFAR-10 python batch with the official structure (bytes keys, N x 3072 uint8)."""
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"generated", b"labels": rng.integers(0, 10, n).tolist(),
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}


@pytest.fixture(autouse=True, scope="session")
def _throwaway_results_store(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Measuring commands record their runs: in tests into a throw-away store, never the working directory's."""
    os.environ["EDGEMAP_STORE"] = str(tmp_path_factory.mktemp("results") / "store.db")
    # data digests (edgemap.pipeline.data_digest) are cached in a throw-away file too, not the user's ~/.cache
    os.environ["EDGEMAP_DIGEST_CACHE"] = str(tmp_path_factory.mktemp("digests") / "data-digests.json")


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):  # noqa: ANN201 - the runner
    """`edgemap ARGS` in this process through the real entry point (no interpreter start-up, ~2 s less than a
    subprocess): returns (exit status, stdout, stderr). Tests of what reaches a real terminal keep subprocesses."""
    from edgemap.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["edgemap", *args])
        capsys.readouterr()
        try:
            main()
            status = 0
        except SystemExit as exc:
            status = int(exc.code or 0)
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture
def cifar_python_dir(tmp_path: Path) -> Path:
    """A tiny cifar-10-batches-py folder (5 train batches of 8 images, a test batch of 6)."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(make_batch(8, i)))
    (folder / "test_batch").write_bytes(pickle.dumps(make_batch(6, 99)))
    return folder


@pytest.fixture
def cifar_root() -> Path:
    """The shared real CIFAR-10 when present, else skip (tests needing real data)."""
    root = Path(os.environ.get("EDGEMAP_CIFAR10", SHARED_CIFAR))
    if not (root / "cifar10_test.npz").is_file():
        pytest.skip("real CIFAR-10 not available")
    return root


@pytest.fixture
def tiny_npz(tmp_path: Path) -> Path:
    """An .npz with 40 learnable 32x32 images: the class is encoded in the mean colour."""
    rng = np.random.default_rng(0)
    labels = np.arange(40) % 10
    images = np.clip(rng.normal(labels[:, None, None, None] * 25, 10, (40, 32, 32, 3)), 0, 255).astype(np.uint8)
    path = tmp_path / "tiny.npz"
    np.savez(path, images=images, labels=labels.astype(np.uint8))
    return path
