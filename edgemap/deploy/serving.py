"""Run an edgemap HTTP app with uvicorn: one process or several workers, plain HTTP or TLS.

Both servers (`edgemap serve` and `edgemap split serve`) go through `run_service`: the listening socket is
bound here first (a port in use is a one-line error), TLS files are checked before anything loads (a missing,
encrypted or mismatched certificate/key is a one-line error), and SIGTERM stops accepting, finishes the
requests in flight and exits 0. With `workers > 1`, edgemap.deploy.workers runs one process per worker on
that one socket. The app itself comes from an AppBuilder: a picklable callable that builds it (and says how
to clean up), so that every worker process builds its own (its model, batcher and results-store writer).
"""

from __future__ import annotations

import importlib.util
import signal
import socket
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from edgemap.errors import EdgemapError

# uvicorn's HTTP parser and event loop: "auto" takes the C parser (httptools) where installed, and asyncio's loop
HTTP_IMPLEMENTATIONS = {"auto": None, "h11": "h11", "httptools": "httptools"}
LOOP_IMPLEMENTATIONS = {"auto": None, "asyncio": "asyncio", "uvloop": "uvloop"}
MAX_WORKERS = 64
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# () -> (the ASGI app, a function to call once it has stopped); must pickle (functools.partial of a module function)
AppBuilder = Callable[[], tuple]


def check_implementations(http: str, loop: str) -> None:
    """EdgemapError unless `http` and `loop` name known (and installed) uvicorn implementations."""
    for what, value, known in (("http", http, HTTP_IMPLEMENTATIONS), ("loop", loop, LOOP_IMPLEMENTATIONS)):
        if value not in known:
            raise EdgemapError(f"--{what} must be one of {', '.join(known)}, got {value!r}")
        module = known[value]
        if module is not None and module not in ("h11", "asyncio") and importlib.util.find_spec(module) is None:
            raise EdgemapError(f"--{what} {value}: the package {module!r} is not installed (pip install {module})")


def uvicorn_choice(http: str, loop: str) -> tuple[str, str]:
    """(http, loop) as uvicorn names them: auto = httptools when installed (else h11) on asyncio's loop.
    Not uvloop by default, unlike uvicorn: with httptools on uvloop, 503s under 4x overload took 1.0-1.5 s at
    p99 instead of 0.2-0.3 s (benchmarks/results/serve_attempts.md)."""
    http = http if http != "auto" else ("httptools" if importlib.util.find_spec("httptools") else "h11")
    return http, "asyncio" if loop == "auto" else loop


def check_tls(cert: Optional[Path], key: Optional[Path]) -> None:
    """EdgemapError (one line) unless `cert` and `key` are both absent, or both readable and a matching pair."""
    if cert is None and key is None:
        return
    if cert is None or key is None:
        raise EdgemapError("--tls-cert and --tls-key go together: give both (PEM files)")
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not Path(path).is_file():
            raise EdgemapError(f"{option} {path}: file not found")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:  # an empty password: an encrypted key fails here instead of prompting on the terminal
        context.load_cert_chain(str(cert), str(key), password=lambda: b"")
    except ssl.SSLError as exc:
        raise EdgemapError(f"--tls-cert {cert} / --tls-key {key}: not a usable PEM certificate and unencrypted "
                           f"private key of that certificate ({exc.reason or exc})") from None
    except OSError as exc:
        raise EdgemapError(f"--tls-cert {cert} / --tls-key {key}: cannot read ({exc.strerror or exc})") from None


@dataclass(frozen=True)
class Listen:
    """Where and how to serve: address, uvicorn implementations, TLS, worker processes, uvicorn limits."""

    host: str = "127.0.0.1"
    port: int = 8000
    http: str = "auto"
    loop: str = "auto"
    tls_cert: Optional[Path] = None
    tls_key: Optional[Path] = None
    workers: int = 1
    graceful_timeout_s: int = 30
    limit_concurrency: Optional[int] = None  # beyond this many connections + requests, uvicorn itself answers 503
    timeout_keep_alive: int = 5

    def __post_init__(self) -> None:
        check_implementations(self.http, self.loop)
        if not 1 <= self.workers <= MAX_WORKERS:
            raise EdgemapError(f"--workers must be 1..{MAX_WORKERS}, got {self.workers}")
        if not 0 <= self.port <= 65535:
            raise EdgemapError(f"--port must be 0..65535, got {self.port}")
        check_tls(self.tls_cert, self.tls_key)

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    def url(self, port: Optional[int] = None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{port or self.port}"

    def uvicorn_config(self, app):  # noqa: ANN001, ANN201 - ASGI app -> uvicorn.Config
        import uvicorn

        http, loop = uvicorn_choice(self.http, self.loop)
        return uvicorn.Config(app, log_level="warning", lifespan="on", http=http, loop=loop,
                              timeout_graceful_shutdown=self.graceful_timeout_s,
                              timeout_keep_alive=self.timeout_keep_alive, limit_concurrency=self.limit_concurrency,
                              ssl_certfile=str(self.tls_cert) if self.tls_cert else None,
                              ssl_keyfile=str(self.tls_key) if self.tls_key else None)


def bind(listen: Listen) -> socket.socket:
    """The listening socket (shared by every worker); EdgemapError when the address cannot be had."""
    family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio sets TCP_NODELAY only then
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((listen.host, listen.port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise EdgemapError(f"cannot listen on {listen.host}:{listen.port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def run_service(build: AppBuilder, listen: Listen, name: str, banner: str, token: Optional[str] = None) -> None:
    """Serve the app `build` makes until SIGINT/SIGTERM (then finish in-flight requests and return);
    `name: banner` is printed once the app is built (in every worker, with several)."""
    sock = bind(listen)
    if listen.host not in LOOPBACK and token is None:
        print(f"{name}: warning: listening on {listen.host} without a token (--token-file or $EDGEMAP_SERVE_TOKEN)",
              file=sys.stderr)
    if listen.host not in LOOPBACK and listen.scheme == "http":
        print(f"{name}: warning: plain HTTP on {listen.host}: the token and images cross the network unencrypted "
              "(--tls-cert/--tls-key)", file=sys.stderr)
    try:
        if listen.workers > 1:
            from edgemap.deploy.workers import supervise

            supervise(build, run_one, listen, sock, name, banner)
            return
        app, close = build()
        print(f"{name}: {banner}", file=sys.stderr, flush=True)
        try:
            run_one(app, listen, sock, name)
        finally:
            close()
    finally:
        sock.close()


def run_one(app, listen: Listen, sock: socket.socket, name: str) -> None:  # noqa: ANN001 - ASGI app
    """uvicorn in this process on `sock`. SIGTERM and SIGINT (Ctrl-C) are clean stops: uvicorn finishes the
    requests in flight, then re-raises the signal it caught, which the handlers here turn into a return."""
    import uvicorn

    server = uvicorn.Server(listen.uvicorn_config(app))
    stopped_by: list[int] = []
    previous = {sig: signal.signal(sig, lambda s, frame: stopped_by.append(s)) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopped_by:
        print(f"{name}: {signal.Signals(stopped_by[0]).name}: stopped after finishing in-flight requests",
              file=sys.stderr, flush=True)
    elif not server.started:
        raise EdgemapError(f"server on {listen.host}:{listen.port} did not start (see the message above)")
