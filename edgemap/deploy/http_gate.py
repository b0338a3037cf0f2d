"""What every request passes through: the bearer-token check and the Prometheus metrics.

A plain ASGI middleware (not Starlette's BaseHTTPMiddleware, which costs a task per request): it counts
every answer by path and status, times it, and refuses requests without the token with 401 before any
route runs. The metrics live in a registry of their own per app, so that several apps (tests) never clash.
With several worker processes ($PROMETHEUS_MULTIPROC_DIR set by edgemap.deploy.workers before they start),
prometheus-client keeps every worker's values in files there and /metrics sums them: counters and
histograms over all workers, the in-flight and queue gauges summed over live workers, the model load time
per worker (a `pid` label).
"""

from __future__ import annotations

import hmac
import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Callable

from edgemap.errors import EdgemapError

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/health"})  # probes work without the token
TOKEN_ENV = "EDGEMAP_SERVE_TOKEN"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # a client's X-Request-ID is kept when it looks like an id
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


class ServerMetrics:
    """The server's Prometheus metrics in their own registry."""

    def __init__(self, max_batch: int) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = r = CollectorRegistry()
        self.requests = Counter("edgemap_requests", "HTTP requests answered, by route and status code",
                                ["path", "code"], registry=r)
        self.rejected = Counter("edgemap_rejected_requests", "Requests refused, by reason", ["reason"], registry=r)
        self.latency = Histogram("edgemap_request_seconds", "Time from request to answer", ["path"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("edgemap_batch_size", "Images per inference batch",
                                    buckets=sorted({1, 2, 4, 8, 16, 32, 64, 128, max_batch}), registry=r)
        self.inference = Histogram("edgemap_inference_seconds", "Time of one batch on the runtime",
                                   buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("edgemap_requests_in_flight", "Admitted requests inside the server (the queue)",
                               registry=r, multiprocess_mode="livesum")
        self.queued_images = Gauge("edgemap_queued_images", "Images waiting for the inference thread", registry=r,
                                   multiprocess_mode="livesum")
        self.model_load = Gauge("edgemap_model_load_seconds", "Time to verify, load and self-test the bundle",
                                registry=r, multiprocess_mode="liveall")
        self.images = Counter("edgemap_images_classified", "Images classified", registry=r)
        self.reloads = Counter("edgemap_reloads", "Bundle reloads (SIGHUP), by result", ["result"], registry=r)

    def on_batch(self, images: int, seconds: float) -> None:
        """Record one inference batch."""
        self.batch_size.observe(images)
        self.inference.observe(seconds)
        self.images.inc(images)

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if not self.multiprocess:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client.multiprocess import MultiProcessCollector

        merged = CollectorRegistry()
        MultiProcessCollector(merged)  # every worker's values, from the files in $PROMETHEUS_MULTIPROC_DIR
        return generate_latest(merged), CONTENT_TYPE_LATEST


def read_token(token_file: str | Path | None) -> str | None:
    """The bearer token from `token_file`, else from $EDGEMAP_SERVE_TOKEN, else None (no authentication)."""
    if token_file is not None:
        path = Path(token_file)
        if not path.is_file():
            raise EdgemapError(f"{path}: token file not found")
        token, source = path.read_text().strip(), str(path)
        if not token:
            raise EdgemapError(f"{path}: token file is empty")
    else:
        token, source = os.environ.get(TOKEN_ENV, "").strip() or None, f"${TOKEN_ENV}"
    # The same rule on both ends (server and split client), so the message names where the token came from.
    if token is not None and (len(token) < 16 or not token.isascii() or any(c.isspace() for c in token)):
        raise EdgemapError(f"{source}: the token must be at least 16 printable ASCII characters without spaces")
    return token


class Gate:
    """ASGI middleware: bearer token (constant-time compare), load shedding, then count and time the answer."""

    def __init__(self, app, metrics: ServerMetrics, token: str | None, known_paths: frozenset[str],  # noqa: ANN001
                 shed: Callable[[str], bool] | None = None, open_paths: frozenset[str] = frozenset(),
                 on_refused: Callable[[str, int, str, str, float], None] | None = None) -> None:
        self.app = app
        # (path, status, reason, request id, ms) for each request refused here (401, 503): the results store's rows
        self._on_refused = on_refused
        self._open = OPEN_PATHS | open_paths
        self.metrics = metrics
        self._token = token.encode() if token else None
        self._known = known_paths
        self._shed = shed  # path -> True when the server is full: 503 here, before any routing (cheap under overload)

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"] if scope["path"] in self._known else "other"  # bounded label values
        status = {"code": 500}
        t0 = time.perf_counter()

        async def send_counted(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            if self._token is not None and scope["path"] not in self._open and not self._authorized(scope):
                await self._refuse(scope, send_counted, t0, 401, "unauthorized", "missing or wrong bearer token",
                                   [(b"www-authenticate", b'Bearer realm="edgemap"')])
            elif self._shed is not None and self._shed(scope["path"]):
                await self._refuse(scope, send_counted, t0, 503, "overloaded",
                                   "server busy: too many requests in flight; retry shortly", [(b"retry-after", b"1")])
            else:
                await self.app(scope, receive, send_counted)
        finally:
            self.metrics.requests.labels(path, str(status["code"])).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - t0)

    async def _refuse(self, scope: dict, send, t0: float, status: int, reason: str, detail: str,  # noqa: ANN001
                      headers: list) -> None:
        self.metrics.rejected.labels(reason).inc()
        rid = _request_id(scope)
        await _send_json(send, status, {"detail": detail}, [*headers, (b"x-request-id", rid.encode())])
        if self._on_refused is not None:
            self._on_refused(scope["path"], status, reason, rid, round((time.perf_counter() - t0) * 1000, 3))

    def _authorized(self, scope: dict) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, given = value.partition(b" ")
                # compare_digest takes the same time whatever the first differing byte is
                return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self._token)
        return False


def request_id(headers, generate: bool = True) -> str | None:  # noqa: ANN001 - starlette Headers or a dict
    """The client's X-Request-ID when it looks like an id, else a new one (or None with generate=False)."""
    rid = headers.get("x-request-id", "")
    if REQUEST_ID.fullmatch(rid):
        return rid
    return uuid.uuid4().hex if generate else None


def _request_id(scope: dict) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            return request_id({"x-request-id": value.decode("latin-1")})
    return request_id({})


async def _send_json(send, status: int, body: dict, headers: list | None = None) -> None:  # noqa: ANN001 - ASGI send
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": data})
