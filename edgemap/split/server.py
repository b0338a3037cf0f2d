"""The server half: a FastAPI app that runs the tail of a split (or the whole model on a sent image).

It is built on the prediction server's machinery (edgemap.deploy.service / serving): /healthz, /readyz,
/metrics, offline /docs, the optional bearer token, load shedding (503 + Retry-After beyond `max_queue`
requests), a per-request timeout, X-Request-ID echoed when the edge sends one (never added otherwise: the
planner counts every byte of framing), TLS, worker processes and the graceful SIGTERM stop.

    GET  /info    the whole model's sha256, the split points and encodings it serves
    GET  /ping    an empty answer (the edge measures round-trip time with it)
    POST /probe   reads the body and answers its size (the edge measures bandwidth with it)
    POST /infer   X-Model-Sha256, X-Split-Point (c<k> or "input"), X-Encoding, X-Shape[, X-Scale, X-Zero-Point];
                  body: the activation or the image. Answer: float32 logits (binary), X-Server-Ms.

A request for another model or an unknown point is refused with 409, a body that does not match its
headers with 400; nothing reaches the model unchecked.
"""

# no `from __future__ import annotations`: FastAPI must see the real Request type of the local import

import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from edgemap.errors import EdgemapError
from edgemap.split import codec
from edgemap.split.bundle import read_split_manifest

if TYPE_CHECKING:
    from edgemap.deploy.serving import Listen

MAX_BODY = 4 * codec.MAX_ELEMENTS  # the largest FP32 activation a request may carry


class TailServer:
    """The server bundle loaded and verified: the whole model plus one tail session per split point."""

    def __init__(self, bundle: "str | Path", threads: int = 0) -> None:
        from edgemap.deploy.edge import EdgeModel
        from edgemap.runtime.onnxruntime_backend import OrtSession
        from edgemap.split.bundle import selftest_parts

        t0 = time.perf_counter()
        self.bundle = Path(bundle)
        self.manifest = read_split_manifest(self.bundle, "server")
        self.split = self.manifest["split"]
        self.whole = EdgeModel(self.bundle, threads=threads)  # verifies files and the whole-model self-test
        self.tails = {p: OrtSession(self.bundle / rec["file"], threads=threads, providers=["CPUExecutionProvider"])
                      for p, rec in self.split["points"].items()}
        selftest_parts(self.bundle, self.manifest, self.tails)
        self.lock = threading.Lock()  # one inference at a time: sessions are sized for the machine's cores
        self.stats = {"requests": 0, "refused": 0, "started": time.time()}
        self.load_s = time.perf_counter() - t0

    def info(self) -> dict:
        return {"model_sha256": self.split["model_sha256"], "model_name": self.split["model_name"],
                "points": {p: {"tensor": r["tensor"], "shape": r["shape"]} for p, r in self.split["points"].items()},
                "activation_encodings": list(codec.ACTIVATION_ENCODINGS), "input_encodings": list(codec.IMAGE_KINDS),
                "class_names": self.whole.class_names}

    def check_identity(self, headers: dict) -> str:
        """The requested split point, after checking the request is for this model; EdgemapError('409 ...') if not."""
        sha, point = headers.get("x-model-sha256", ""), headers.get("x-split-point", "")
        if sha != self.split["model_sha256"]:
            raise EdgemapError(f"409 model mismatch: this server runs {self.split['model_sha256'][:12]}, "
                               f"the request is for {sha[:12] or 'no model'}")
        if point != "input" and point not in self.split["points"]:
            raise EdgemapError(f"409 unknown split point {point!r}; this server has input, {', '.join(self.split['points'])}")
        return point

    def infer(self, point: str, body: bytes, headers: dict) -> np.ndarray:
        """Logits (1 x classes) for one request body; EdgemapError for a body that does not match its headers."""
        if point == "input":
            image = codec.decode_image(body, headers, self.whole.preprocess.num_channels)
            with self.lock:
                return self.whole.logits([image])
        x = codec.decode_activation(body, headers)
        want = tuple(self.split["points"][point]["shape"])
        if x.shape[1:] != want or x.shape[0] != 1:
            raise EdgemapError(f"activation shape {x.shape} does not fit point {point} (1 x {'x'.join(map(str, want))})")
        if not np.isfinite(x).all():
            raise EdgemapError("the activation holds NaN or Inf")
        with self.lock:
            return self.tails[point].run(x)


@dataclass(frozen=True)
class TailConfig:
    """What `edgemap split serve` can tune about the app (how it listens: edgemap.deploy.serving.Listen)."""

    threads: int = 0
    token: Optional[str] = None
    request_timeout_s: float = 10.0
    max_queue: int = 64  # requests inside the server at once; more get 503 + Retry-After

    def __post_init__(self) -> None:
        if self.request_timeout_s <= 0 or self.max_queue < 1:
            raise EdgemapError(f"--timeout must be > 0 and --max-queue >= 1, got {self.request_timeout_s}, {self.max_queue}")


def create_app(server: TailServer, config: TailConfig = TailConfig()):  # noqa: ANN201 - fastapi.FastAPI
    """A FastAPI app around a loaded TailServer, with the deploy server's probes, metrics, token and limits."""
    from fastapi import Request, Response

    from edgemap.deploy.http_gate import ServerMetrics
    from edgemap.deploy.service import Service, guard, new_app

    metrics = ServerMetrics(1)
    metrics.model_load.set(server.load_s)
    busy = {"in_flight": 0}
    service = Service(metrics, ready_info=lambda: {"in_flight": busy["in_flight"], "max_queue": config.max_queue},
                      gauges=lambda: metrics.in_flight.set(busy["in_flight"]))
    app = new_app(service, "edgemap split server", server.whole.manifest.get("edgemap_version", "?"))

    _add_link_routes(app, server)

    @app.post("/infer")
    async def infer(request: Request) -> Response:
        """The tail (or the whole model) on one activation or image; answer: float32 logits, X-Server-Ms."""
        busy["in_flight"] += 1
        try:
            return await _infer(server, request, config, metrics)
        finally:
            busy["in_flight"] -= 1

    guard(app, service, config.token, shed=lambda path: path == "/infer" and busy["in_flight"] >= config.max_queue)
    return app


def _add_link_routes(app, server: TailServer) -> None:  # noqa: ANN001 - fastapi.FastAPI
    """/health, /info, /ping and /probe: what the edge reads before and between its requests."""
    from fastapi import Request, Response

    @app.get("/health", include_in_schema=False)
    def health() -> dict:
        return {"status": "ok", "selftest": server.whole.selftest, **server.stats}

    @app.get("/info")
    def info() -> dict:
        """The whole model's sha256, its split points (tensor, shape) and the encodings this server reads."""
        return server.info()

    @app.get("/ping")
    def ping() -> Response:
        """An empty answer: the edge measures round-trip time with it."""
        return Response(b"", media_type="application/octet-stream")

    @app.post("/probe")
    async def probe(request: Request) -> Response:
        """Reads the body (at most the largest activation) and answers its size: the edge measures bandwidth."""
        body = await _read_limited(request)
        if isinstance(body, Response):
            return body
        return Response(b"", media_type="application/octet-stream", headers={"X-Bytes": str(len(body))})


async def _read_limited(request):  # noqa: ANN001, ANN202 - starlette Request -> bytes | Response
    """The body, or a 413 answer when it states (or turns out) larger than MAX_BODY; read as it streams."""
    from fastapi.responses import JSONResponse

    declared = request.headers.get("content-length", "0")
    too_big = JSONResponse({"detail": f"body must state a Content-Length of at most {MAX_BODY} bytes"}, status_code=413)
    if not declared.isdigit() or int(declared) > MAX_BODY:
        return too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return too_big
        chunks.append(chunk)
    return b"".join(chunks)


async def _infer(server: TailServer, request, config: TailConfig, metrics):  # noqa: ANN001, ANN202
    import asyncio

    from fastapi import Response
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    from edgemap.deploy.http_gate import request_id

    server.stats["requests"] += 1
    rid = request_id(request.headers, generate=False)
    echo = {"X-Request-ID": rid} if rid else {}
    headers = {k.lower(): v for k, v in request.headers.items()}
    stage = "reading the body"
    try:
        async with asyncio.timeout(config.request_timeout_s):
            body = await _read_limited(request)
            t0 = time.perf_counter()  # X-Server-Ms from here: the body's upload is the network's time, not the server's
            stage = "waiting for the model"
            if isinstance(body, Response):
                server.stats["refused"] += 1
                metrics.rejected.labels("body_too_large").inc()
                return body
            point = server.check_identity(headers)
            t1 = time.perf_counter()
            logits = await run_in_threadpool(server.infer, point, body, headers)  # keeps /ping answering meanwhile
            metrics.on_batch(1, time.perf_counter() - t1)
    except EdgemapError as exc:
        server.stats["refused"] += 1
        msg = str(exc)
        status = 409 if msg.startswith("409 ") else 400
        metrics.rejected.labels("mismatch" if status == 409 else "bad_body").inc()
        return JSONResponse({"detail": msg.removeprefix("409 ")}, status_code=status, headers=echo)
    except TimeoutError:
        server.stats["refused"] += 1
        metrics.rejected.labels("timeout").inc()
        code = 408 if stage == "reading the body" else 503  # a slow client, or a server too busy: retry later
        return JSONResponse({"detail": f"request timed out after {config.request_timeout_s:g} s {stage}"},
                            status_code=code, headers={**({"Retry-After": "1"} if code == 503 else {}), **echo})
    ms = (time.perf_counter() - t0) * 1e3
    return Response(np.ascontiguousarray(logits, dtype=np.float32).tobytes(), media_type="application/octet-stream",
                    headers={"X-Server-Ms": f"{ms:.3f}", "X-Model-Sha256": server.split["model_sha256"], **echo})


def build_app(bundle: "str | Path", config: TailConfig) -> tuple:
    """(app, close): the server bundle loaded, verified and wrapped; run once per worker process."""
    server = TailServer(bundle, config.threads)
    return create_app(server, config), lambda: None


def serve(bundle: Path, host: str = "127.0.0.1", port: int = 8100, threads: int = 0,
          config: Optional[TailConfig] = None, listen: "Optional[Listen]" = None) -> None:
    """Load, verify and serve a server bundle until SIGINT/SIGTERM (then finish in-flight requests)."""
    from edgemap.deploy.serving import Listen, run_service

    config = config or TailConfig(threads=threads)
    listen = listen or Listen(host, port)
    listen = Listen(**{**vars(listen), "limit_concurrency": 2 * config.max_queue + 32, "timeout_keep_alive": 30})
    manifest = read_split_manifest(Path(bundle), "server")["split"]
    banner = (f"{len(manifest['points'])} split point(s) of {manifest['model_name']} ({manifest['model_sha256'][:12]}) "
              f"on {listen.url()}" + (f", {listen.workers} workers" if listen.workers > 1 else ""))
    run_service(partial(build_app, bundle, config), listen, "edgemap split serve", banner, config.token)
