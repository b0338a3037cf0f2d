"""Third-party noise is filtered from stderr unless --verbose; everything else passes unchanged; progress off a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796119678.557436   10883 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results",
    "W1201 10:08:00.551000 10883 /x/torch/utils/_pytree.py:630] <enum 'KernelPreference'> is an Enum subclass and is now natively "
    "supported by torch.compile as an opaque value type. Calling register_constant() on Enum subclasses is deprecated",
    "I0000 00:00:1796119683.313253   10883 flatbuffer_export.cc:4410] Estimated count of arithmetic ops: 0.261 M  ops",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    "/x/multiprocessing/popen_fork.py:66: RuntimeWarning: os.fork() was called. os.fork() is incompatible with multithreaded "
    "code, and JAX is multithreaded, so this will likely lead to a deadlock.",
    "  self.pid = os.fork()",
]
KEEP = ["edgemap: error: a real message", "Traceback (most recent call last):", "  File \"x.py\", line 1, in <module>",
        "W1201 a warning of someone else that is not the pytree one]", "INFO: a line that is not LiteRT's"]


def _child(*argv: str) -> subprocess.CompletedProcess:
    code = textwrap.dedent(f"""
        import os, sys
        from edgemap.core.console import progress, setup
        setup(sys.argv[1:])
        for line in {NOISE + KEEP!r}:
            os.write(2, (line + "\\n").encode())
        os.write(2, b"partial line without newline")
        for _ in progress(range(3), description="work"):
            pass
    """)
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_noise_is_dropped_and_everything_else_kept_in_order() -> None:
    proc = _child()
    assert proc.returncode == 0
    lines = proc.stderr.splitlines()
    assert lines[:len(KEEP)] == KEEP  # nothing else dropped, order kept
    assert not any(n in proc.stderr for n in NOISE)
    assert lines[-1] == "partial line without newlinework: 3/3 done (0 s)"  # partial lines pass; plain progress off a tty


def test_verbose_keeps_the_noise() -> None:
    proc = _child("--verbose")
    assert all(n in proc.stderr for n in NOISE) and all(k in proc.stderr for k in KEEP)


def test_a_real_litert_conversion_prints_only_edgemaps_lines(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "edgemap.cli", "convert", "zoo:tiny", "--to", "litert", "--parity-n", "16",
                           "--out", str(tmp_path / "t.tflite")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    # the absl / oneDNN / flatbuffer / pytree / XNNPACK lines are gone; what is left is edgemap's note of the stored run
    others = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("recorded run ")]
    assert others == [], proc.stderr
    assert "recorded run " in proc.stderr  # the conversion is recorded (EDGEMAP_STORE points at the session's store)
