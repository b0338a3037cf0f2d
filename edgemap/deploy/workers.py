"""`--workers N`: N server processes answering on one listening socket, under a small supervisor.

Each worker is a fresh process (multiprocessing's spawn: nothing half-initialised is forked) that builds its
own app: its own verified model, micro-batcher and results-store writer. The supervisor (this process)
binds the socket, starts the workers and waits until every one has loaded its model (or stops them all
with the first one's error), then:

- SIGHUP is passed to every worker: each reloads the bundle, verified, and keeps its old model when the new
  one fails (the verified hot reload of a single server, per worker);
- SIGTERM / SIGINT: the supervisor closes its copy of the socket and sends SIGTERM to every worker; each
  stops accepting, finishes its requests in flight and exits; then the supervisor returns (exit 0);
- a worker that dies is restarted, at most MAX_RESTARTS times in RESTART_WINDOW_S (then everything stops with
  an error rather than serve on with fewer and fewer workers).

/metrics: $PROMETHEUS_MULTIPROC_DIR points at a fresh folder for the workers' metric files (see
edgemap.deploy.http_gate); a dead worker's live gauges are dropped from it.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from multiprocessing.connection import wait
from typing import Callable, Optional

from edgemap.deploy.http_gate import MULTIPROC_ENV
from edgemap.errors import EdgemapError

# the types of edgemap.deploy.serving, which calls this module (named here, not imported: no import cycle)
AppBuilder = Callable[[], tuple]  # () -> (ASGI app, close)
Listen = "edgemap.deploy.serving.Listen"
RunOne = Callable  # edgemap.deploy.serving.run_one(app, listen, sock, name)

START_TIMEOUT_S = 300  # verifying, loading and self-testing a large bundle on a slow device
MAX_RESTARTS, RESTART_WINDOW_S = 5, 60.0
POLL_S = 0.2


def _worker(build: AppBuilder, run_one: RunOne, listen: Listen, sock, name: str, index: int,  # noqa: ANN001
            report) -> None:  # noqa: ANN001 - multiprocessing Connection
    """A worker process: build the app, say so, serve until SIGTERM."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the app's loop takes SIGHUP over: never die of an early one
    try:
        app, close = build()
    except EdgemapError as exc:
        report.send(("error", str(exc)))
        sys.exit(2)
    report.send(("ready", os.getpid()))
    report.close()
    try:
        run_one(app, listen, sock, f"{name} worker {index}")
    finally:
        close()


class Supervisor:
    """Starts, watches, signals and stops the worker processes."""

    def __init__(self, build: AppBuilder, run_one: RunOne, listen: Listen, sock, name: str) -> None:  # noqa: ANN001
        self.build, self.run_one, self.listen, self.sock, self.name = build, run_one, listen, sock, name
        self.context = multiprocessing.get_context("spawn")
        self.procs: list[Optional[multiprocessing.Process]] = [None] * listen.workers
        self.restarts: list[float] = []
        self.stop_signal: Optional[int] = None

    def start(self, index: int) -> tuple:
        receive, send = self.context.Pipe(duplex=False)
        proc = self.context.Process(target=_worker, name=f"edgemap-serve-worker-{index}",
                                    args=(self.build, self.run_one, self.listen, self.sock, self.name, index, send))
        proc.start()
        send.close()
        self.procs[index] = proc
        return receive

    def await_ready(self, pipes: dict) -> None:
        """Wait until every started worker has built its app; EdgemapError (after stopping all) if one fails."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while pipes:
            if self.stop_signal is not None or time.monotonic() > deadline:
                self.stop()
                raise EdgemapError(f"workers did not start within {START_TIMEOUT_S} s"
                                   if self.stop_signal is None else "stopped while the workers were starting")
            for conn in wait(list(pipes), timeout=POLL_S):
                index = pipes.pop(conn)
                try:
                    kind, detail = conn.recv()
                except EOFError:  # died before a word (a crash: its traceback is on stderr)
                    self.procs[index].join(5)
                    kind, detail = "error", f"exit code {self.procs[index].exitcode}"
                if kind != "ready":
                    self.stop()
                    raise EdgemapError(f"worker {index} could not start: {detail}")

    def watch(self) -> None:
        """Until a stop signal: restart workers that died (within the restart budget)."""
        from prometheus_client import multiprocess

        while self.stop_signal is None:
            time.sleep(POLL_S)
            for index, proc in enumerate(self.procs):
                if proc is None or proc.is_alive() or self.stop_signal is not None:
                    continue
                multiprocess.mark_process_dead(proc.pid)
                now = time.monotonic()
                self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW_S] + [now]
                if len(self.restarts) > MAX_RESTARTS:
                    self.stop()
                    raise EdgemapError(f"workers died {len(self.restarts)} times within {RESTART_WINDOW_S:g} s "
                                       f"(the last: worker {index}, exit code {proc.exitcode}); stopped")
                print(f"{self.name}: worker {index} (pid {proc.pid}) exited with code {proc.exitcode}; restarting",
                      file=sys.stderr, flush=True)
                self.await_ready({self.start(index): index})

    def forward(self, sig: int) -> None:
        for proc in self.procs:
            if proc is not None and proc.is_alive():
                os.kill(proc.pid, sig)

    def stop(self) -> None:
        """Stop accepting here, SIGTERM every worker, wait for them to finish their requests (then kill)."""
        self.sock.close()
        self.forward(signal.SIGTERM)
        deadline = time.monotonic() + self.listen.graceful_timeout_s + 10
        for proc in self.procs:
            if proc is not None:
                proc.join(max(deadline - time.monotonic(), 0.1))
                if proc.is_alive():
                    proc.kill()
                    proc.join(5)


def supervise(build: AppBuilder, run_one: RunOne, listen: Listen, sock, name: str, banner: str) -> None:  # noqa: ANN001
    """Run `listen.workers` worker processes on `sock` until SIGTERM/SIGINT, each serving with
    `run_one(app, listen, sock, name)`; see the module docstring."""
    metrics_dir = tempfile.mkdtemp(prefix="edgemap-serve-metrics-")
    previous_env = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = metrics_dir  # inherited by the workers, read when they import prometheus_client
    sup = Supervisor(build, run_one, listen, sock, name)

    def on_stop(sig: int, _frame) -> None:  # noqa: ANN001
        sup.stop_signal = sig

    handlers = {s: signal.signal(s, h) for s, h in ((signal.SIGTERM, on_stop), (signal.SIGINT, on_stop),
                                                    (signal.SIGHUP, lambda s, f: sup.forward(signal.SIGHUP)))}
    try:
        sup.await_ready({sup.start(i): i for i in range(listen.workers)})
        print(f"{name}: {banner}", file=sys.stderr, flush=True)
        sup.watch()
        sup.stop()
        print(f"{name}: {signal.Signals(sup.stop_signal).name}: {listen.workers} workers stopped after finishing "
              "in-flight requests", file=sys.stderr, flush=True)
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
        if previous_env is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous_env
        shutil.rmtree(metrics_dir, ignore_errors=True)
