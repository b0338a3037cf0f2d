"""What edgemap prints: its own lines, without third-party noise, and progress that suits the terminal.

`setup(argv)` runs first in the CLI. Unless `--verbose` is given it sets the libraries' own log levels
and filters the lines that C++ code writes straight to file descriptor 2 (absl's pre-init warning,
TensorFlow's I-lines, LiteRT's "Created TensorFlow Lite XNNPACK delegate", torch's pytree deprecation,
JAX's fork warning): fd 2 is routed through a pipe (a pseudo-terminal when stderr is a terminal, so
progress bars still see one) and a thread forwards every other byte unchanged.
`progress(...)` shows a bar on a terminal and a plain line every few seconds otherwise.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading
import time
import warnings
from typing import Iterable, Iterator, TypeVar

NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|I\d{4} [\d:.]+ +\d+ \S+:\d+\] "  # absl/glog INFO lines (oneDNN, flatbuffer_export, ...)
    rb"|W\d{4} [\d:.]+ +\d+ \S*_pytree\.py:\d+\] .*register_constant"
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate"
    rb"|INFO: Initialized TensorFlow Lite runtime"
    rb"|.*RuntimeWarning: os\.fork\(\) was called.*JAX"
    rb"|\s+self\.pid = os\.fork\(\)\s*$)")
NOISE_STARTS = (b"WARNING: All", b"I", b"W", b"INFO: ", b"  ", b"/")  # a partial line that may still become noise
ENV_QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3", "GLOG_minloglevel": "2", "GRPC_VERBOSITY": "ERROR"}
_installed: "_Fd2Filter | None" = None


def setup(argv: list[str]) -> list[str]:
    """Silence third-party noise unless --verbose is in argv; returns argv without --verbose."""
    verbose = "--verbose" in argv
    args = [a for a in argv if a != "--verbose"]
    if verbose:
        os.environ["EDGEMAP_VERBOSE"] = "1"
        return args
    for key, value in ENV_QUIET.items():
        os.environ.setdefault(key, value)
    warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
    # torch's own deprecation, raised inside torch when a torch.export program is copied
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    if sys.stderr is sys.__stderr__:  # not when a test harness captures stderr in-process
        install_fd2_filter()
    return args


def install_fd2_filter() -> None:
    """Route fd 2 through the noise filter (idempotent); undone at exit after draining what is left."""
    global _installed
    if _installed is None:
        try:
            _installed = _Fd2Filter()
        except OSError:
            _installed = None


class _Fd2Filter:
    def __init__(self) -> None:
        sys.stderr.flush()
        self.original = os.dup(2)
        if os.isatty(2):
            import pty

            self.read_fd, write_fd = pty.openpty()
            _copy_window_size(self.original, write_fd)
        else:
            self.read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self.thread = threading.Thread(target=self._forward, name="edgemap-stderr-filter", daemon=True)
        self.thread.start()
        atexit.register(self.close)

    def _forward(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self.read_fd, 65536)
            except OSError:  # a pty reports EIO once every writer has gone
                chunk = b""
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            out = b"".join(line + b"\n" for line in lines if not NOISE.match(line.rstrip(b"\r")))
            if pending and not pending.startswith(NOISE_STARTS):  # progress bars redraw without a newline
                out, pending = out + pending, b""
            if out:
                os.write(self.original, out)
        if pending and not NOISE.match(pending):
            os.write(self.original, pending)

    def close(self) -> None:
        """Give fd 2 back and forward what is still buffered (children that still hold it get a second)."""
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self.original, 2)  # our copy of the pipe's write end is gone: the reader sees EOF
        self.thread.join(timeout=1.0)


def _copy_window_size(src: int, dst: int) -> None:
    try:
        import fcntl
        import termios

        fcntl.ioctl(dst, termios.TIOCSWINSZ, fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8))
    except (OSError, ImportError):
        pass


T = TypeVar("T")


def progress(items: Iterable[T], total: int | None = None, description: str = "working", every_s: float = 10.0) -> Iterator[T]:
    """Iterate with a progress bar on a terminal (stderr), or a plain 'description: i/total' line every
    `every_s` seconds and at the end otherwise (logs, CI)."""
    total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)  # type: ignore[arg-type]
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True)) as bar:
            task = bar.add_task(description, total=total)
            for item in items:
                yield item
                bar.advance(task)
        return
    start = last = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= every_s:
            last = now
            print(f"{description}: {done}/{total if total is not None else '?'} ({now - start:.0f} s)", file=sys.stderr, flush=True)
    print(f"{description}: {done}/{total if total is not None else done} done ({time.monotonic() - start:.0f} s)",
          file=sys.stderr, flush=True)


def table_console(piped_width: int = 220):  # noqa: ANN201 - rich.console.Console
    """A console for wide tables: the terminal's width on a terminal; `piped_width` columns when stdout is a pipe or
    file, where rich would otherwise wrap every cell at 80 columns."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else piped_width)
