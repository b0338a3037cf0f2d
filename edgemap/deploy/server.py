"""HTTP server for a bundle (FastAPI + uvicorn), built to hold under load and bad input.

    POST /v1/predict   one or more images: raw PNG/JPEG/BMP body, multipart files, or JSON pixel arrays
                       (see edgemap.deploy.payload) -> {"predictions": [...], "latency_ms": ..., "request_id": ...}
                       (the client's X-Request-ID if it looks like an id, else a new one; also a response header)
    GET  /v1/model     the bundle's manifest (+ self-test result)
    GET  /healthz      the process is up (always open, even with a token)
    GET  /readyz       the model is loaded and the server is not shutting down (open)
    GET  /metrics      Prometheus text format
    GET  /docs         OpenAPI documentation (Swagger UI from local files: works offline)
    Old paths kept as aliases: POST /predict (one image -> the prediction's fields at the top level),
    GET /info (= /v1/model), GET /health.

Requests are admitted up to a bound (else 503 + Retry-After), read within a body limit, decoded and
preprocessed on worker threads with the pixel count checked before decoding, then micro-batched onto
one inference thread (edgemap.deploy.batcher): the event loop never runs a model or a decoder. A refused
request (4xx/5xx) is answered with its X-Request-ID and handed to the result hook (a row in the store).
The probes, metrics, docs and the Gate come from edgemap.deploy.service (shared with `edgemap split serve`);
running it (TLS, --workers, signals) from edgemap.deploy.serving.
"""

# no `from __future__ import annotations`: FastAPI must see the real Request type of the local import

import asyncio
import hashlib
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from edgemap.deploy.batcher import BatchConfig, MicroBatcher
from edgemap.deploy.edge import EdgeModel
from edgemap.deploy.http_gate import ServerMetrics, request_id
from edgemap.deploy.payload import (Limits, RequestRejected, decode_all, header_pixels, images_from_json,
                                    multipart_files, quiet_untrusted_input_logs)
from edgemap.deploy.service import Service, guard, new_app
from edgemap.deploy.serving import Listen, check_implementations, run_service, uvicorn_choice
from edgemap.errors import EdgemapError

INLINE_BODY_BYTES = 64 << 10  # bodies up to this size, holding at most INLINE_PIXELS pixels in all, are decoded
INLINE_PIXELS = 128 * 128  # on the event loop (well under a millisecond); larger ones on a worker thread
PREDICT_PATHS = frozenset({"/v1/predict", "/predict"})
# called once per prediction, on the event loop, after the answer is computed: it must not block (a results store
# plugs in here: edgemap.deploy.recording.PredictionRecorder only appends to a buffer); keys in that module's docstring
ResultHook = Callable[[dict], None]
_PREDICT_BODY = {"required": True, "content": {
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
    "application/json": {"schema": {"description": "H x W x C array of 0..255, a list of them, "
                                    "{'pixels': image} or {'images': [image, ...]}"}}}}


@dataclass(frozen=True)
class ServeConfig:
    """Everything `edgemap serve` can tune about the app (how it listens: edgemap.deploy.serving.Listen)."""

    threads: int = 0
    top_k: int = 3
    limits: Limits = field(default_factory=Limits)
    batching: BatchConfig = field(default_factory=BatchConfig)
    request_timeout_s: float = 10.0
    token: Optional[str] = None
    public_key: Optional[Path] = None
    http: str = "auto"  # uvicorn's HTTP parser: auto, h11 or httptools
    loop: str = "auto"  # uvicorn's event loop: auto (= asyncio), asyncio or uvloop

    def __post_init__(self) -> None:
        if self.top_k < 1 or self.request_timeout_s <= 0:
            raise EdgemapError(f"top_k must be >= 1 and request_timeout_s > 0, got {self.top_k}, {self.request_timeout_s}")
        check_implementations(self.http, self.loop)

    def uvicorn_choice(self) -> tuple[str, str]:
        """(http, loop) as uvicorn names them (edgemap.deploy.serving.uvicorn_choice)."""
        return uvicorn_choice(self.http, self.loop)


def create_app(bundle: "str | Path", config: ServeConfig = ServeConfig(), on_result: Optional[ResultHook] = None):  # noqa: ANN201
    """A FastAPI app serving one verified bundle (verified, loaded and self-tested here, before serving)."""
    from fastapi import Request
    from fastapi.responses import Response

    quiet_untrusted_input_logs()
    metrics = ServerMetrics(config.batching.max_batch)
    loaded = _Loaded.load(bundle, config, metrics)
    batcher = MicroBatcher(loaded.run, config.batching, metrics.on_batch)
    handler = _PredictHandler(loaded, batcher, metrics, config, on_result)

    async def stop() -> None:
        await batcher.drain()
        handler.loaded.model.close()

    def gauges() -> None:
        metrics.in_flight.set(batcher.admitted)
        metrics.queued_images.set(batcher.queued_images)

    service = Service(metrics, ready_info=lambda: {"in_flight": batcher.admitted,
                                                   "max_queue": config.batching.max_queue},
                      gauges=gauges, on_start=[lambda: _on_sighup(lambda: handler.reload(bundle))], on_stop=[stop])
    app = new_app(service, "edgemap edge server", loaded.model.manifest.get("edgemap_version", "?"))

    @app.post("/v1/predict", openapi_extra={"requestBody": _PREDICT_BODY})
    async def predict(request: Request):  # noqa: ANN202
        """Classify one or more images (top-k classes each)."""
        result = await handler.handle(request)
        return _answer(result, result) if isinstance(result, dict) else result

    @app.post("/predict", include_in_schema=False)
    async def predict_legacy(request: Request):  # noqa: ANN202
        result = await handler.handle(request)
        if isinstance(result, Response):
            return result
        one = len(result["predictions"]) == 1
        return _answer({**result["predictions"][0], "latency_ms": result["latency_ms"],
                        "request_id": result["request_id"]} if one else result, result)

    _add_model_routes(app, handler, service)
    guard(app, service, config.token,
          shed=lambda path: path in PREDICT_PATHS and batcher.admitted >= config.batching.max_queue,
          on_refused=lambda path, *refusal: handler.refused(path, *refusal) if path in PREDICT_PATHS else None)
    return app


def _add_model_routes(app, handler: "_PredictHandler", service: Service) -> None:  # noqa: ANN001
    """GET /v1/model (+ the old /info and /health)."""

    @app.get("/v1/model")
    @app.get("/info", include_in_schema=False)
    def model_info() -> dict:
        """The bundle's manifest, its self-test result on this device and the folder it was loaded from."""
        model = handler.loaded.model
        return {**model.manifest, "selftest": model.selftest, "loaded_from": str(handler.loaded.path),
                "loaded_at": handler.loaded.at}

    @app.get("/health", include_in_schema=False)
    def health() -> dict:
        return {"status": "ok", "selftest": handler.loaded.model.selftest,
                "uptime_s": round(time.time() - service.started, 1), "requests": handler.requests,
                "errors": handler.errors}


@dataclass(frozen=True)
class _Loaded:
    """One loaded, verified model with what requests need from it; replaced whole on a reload."""

    model: EdgeModel
    run: Callable[[np.ndarray], np.ndarray]  # inputs -> outputs, on the inference thread
    fixed: tuple  # the model's fixed per-sample input shape (None where any size goes)
    path: Path  # the bundle folder it came from (links resolved: which release of a deploy)
    at: str

    @classmethod
    def load(cls, bundle: "str | Path", config: ServeConfig, metrics: ServerMetrics) -> "_Loaded":
        t0 = time.perf_counter()
        model = EdgeModel(bundle, threads=config.threads, public_key=config.public_key)
        metrics.model_load.set(time.perf_counter() - t0)
        spec = model.session.inputs()[0].shape
        return cls(model, lambda x: model.run_inputs(x, config.batching.max_batch),
                   tuple(spec[1:]) if len(spec) > 1 else (), Path(bundle).resolve(),
                   time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def _on_sighup(reload: Callable) -> None:  # noqa: ANN001
    """SIGHUP reloads the bundle (after `edgemap deploy` switched DIR/current); only in the main thread's loop."""
    import signal

    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(reload()))
    except (RuntimeError, ValueError, NotImplementedError, AttributeError):
        pass  # not the main thread (tests) or no SIGHUP (Windows): no reload by signal


class _PredictHandler:
    """POST /v1/predict: admit, read within limits, decode off the loop, batch, answer."""

    def __init__(self, loaded: _Loaded, batcher: MicroBatcher, metrics: ServerMetrics, config: ServeConfig,
                 on_result: Optional[ResultHook]) -> None:
        self.loaded, self.batcher, self.metrics, self.config, self.on_result = loaded, batcher, metrics, config, on_result
        self.requests = self.errors = 0
        self.hook_failed = False

    async def reload(self, bundle: "str | Path") -> bool:
        """Load the bundle again (verified and self-tested off the event loop), then switch new requests to it;
        requests already prepared finish on the old model. A bundle that fails keeps the old model serving."""
        from starlette.concurrency import run_in_threadpool

        try:
            new = await run_in_threadpool(_Loaded.load, bundle, self.config, self.metrics)
        except EdgemapError as exc:
            self.metrics.reloads.labels("failed").inc()
            print(f"edgemap serve: reload refused, still serving {self.loaded.path}: {exc}", file=sys.stderr, flush=True)
            return False
        self.loaded = new
        self.metrics.reloads.labels("ok").inc()
        print(f"edgemap serve: reloaded {new.path}", file=sys.stderr, flush=True)
        return True

    async def handle(self, request):  # noqa: ANN001, ANN201 - fastapi Request -> dict | Response
        self.requests += 1
        loaded = self.loaded  # the model this request is prepared for and answered by, even across a reload
        t0 = time.perf_counter()
        ticket = self.batcher.admit()
        if ticket is None:
            return self._reject(request, loaded, t0, 503, "overloaded", f"server busy ({self.config.batching.max_queue}"
                                " requests in flight); retry shortly", {"Retry-After": "1"})
        stage = "reading the body"
        try:
            async with asyncio.timeout(self.config.request_timeout_s):
                body = await _read_body(request, self.config.limits.max_body_bytes)
                stage = "waiting for the model"
                x, images, hashes = await self._inputs(body, request.headers, loaded)
                out = await self.batcher.submit(x, ticket, loaded.run)
        except RequestRejected as exc:
            return self._reject(request, loaded, t0, exc.status, exc.reason, str(exc))
        except TimeoutError:
            code = 408 if stage == "reading the body" else 503
            return self._reject(request, loaded, t0, code, "timeout", f"request timed out after "
                                f"{self.config.request_timeout_s:g} s {stage}", {"Retry-After": "1"} if code == 503 else None)
        finally:
            self.batcher.release(ticket)
        preds = [p.to_dict() for p in loaded.model.predictions(out, self.config.top_k)]
        latency_ms = round((time.perf_counter() - t0) * 1000, 3)
        rid = request_id(request.headers)
        if self.on_result is not None:
            self._report(loaded, rid, preds, latency_ms, images, hashes)
        return {"predictions": preds, "latency_ms": latency_ms, "request_id": rid}

    def refused(self, path: str, status: int, reason: str, rid: str, latency_ms: float, detail: str = "",
                loaded: "Optional[_Loaded]" = None) -> None:
        """Hand one refused prediction request to the result hook (a row of the store's request_errors; no image)."""
        if self.on_result is None:
            return
        try:
            self.on_result({"source": "serve", "bundle": (loaded or self.loaded).path, "status": status,
                            "reason": reason, "request_id": rid, "path": path, "detail": detail,
                            "latency_ms": latency_ms})
        except Exception as exc:  # noqa: BLE001 - as in _report
            self._hook_warning(exc)

    def _report(self, loaded: _Loaded, rid: str, preds: list[dict], latency_ms: float, images: list,
                hashes: list) -> None:
        """One hook call per prediction; a hook that fails is said once and never fails the request."""
        now, many = time.time(), len(preds) > 1
        for i, (pred, image, sha) in enumerate(zip(preds, images, hashes)):
            try:
                self.on_result({"source": "serve", "time": now, "index": i, "latency_ms": latency_ms, **pred,
                                "bundle": loaded.path, "request_id": rid, "input": f"{rid}#{i}" if many else rid,
                                "input_sha256": sha, "image": image})
            except Exception as exc:  # noqa: BLE001 - bookkeeping must not turn an answer into a 500
                self._hook_warning(exc)

    def _hook_warning(self, exc: Exception) -> None:
        if not self.hook_failed:  # said once
            self.hook_failed = True
            print(f"edgemap serve: warning: result hook failed ({exc!r}); answers are unaffected",
                  file=sys.stderr, flush=True)

    def _reject(self, request, loaded: _Loaded, t0: float, status: int, reason: str, detail: str,  # noqa: ANN001
                headers: Optional[dict] = None):  # noqa: ANN202 - JSONResponse
        """The error answer (with its request id), counted, and recorded when a result hook is set."""
        from fastapi.responses import JSONResponse

        self.errors += 1
        self.metrics.rejected.labels(reason).inc()
        rid = request_id(request.headers)
        self.refused(request.url.path, status, reason, rid, round((time.perf_counter() - t0) * 1000, 3), detail, loaded)
        return JSONResponse({"detail": detail}, status_code=status, headers={**(headers or {}), "X-Request-ID": rid})

    async def _inputs(self, body: bytes, headers, loaded: _Loaded) -> tuple:  # noqa: ANN001 - starlette Headers
        """(model inputs, decoded images, sha256 of each input or Nones): hashed here, off the loop when large."""
        from starlette.concurrency import run_in_threadpool

        content_type = headers.get("content-type", "").lower()
        limits = self.config.limits
        small = len(body) <= INLINE_BODY_BYTES
        if content_type.startswith("multipart/"):
            items = await multipart_files(body, headers, limits)
        elif content_type.startswith("application/json") or content_type.split(";")[0].endswith("+json"):
            items = images_from_json(body, limits) if small else await run_in_threadpool(images_from_json, body, limits)
        else:
            items = [body]
        # a thread hop costs more than decoding a small image; big ones must not stall the event loop
        if small and sum(x.shape[0] * x.shape[1] if isinstance(x, np.ndarray) else header_pixels(x)
                         for x in items) <= INLINE_PIXELS:
            return self._preprocess(items, loaded)
        return await run_in_threadpool(self._preprocess, items, loaded)

    def _preprocess(self, items: list, loaded: _Loaded) -> tuple:
        """Decode and preprocess (on a worker thread unless small): the queue then holds model-sized inputs only."""
        images = decode_all(items, self.config.limits)
        xs = [loaded.model.preprocess.apply(im) for im in images]
        shapes = {x.shape[1:] for x in xs}
        if len(shapes) > 1:
            raise RequestRejected(400, "bad_image", "images of one request must share a size for this model "
                                  "(its preprocessing does not resize); send them in separate requests")
        shape = shapes.pop()
        if any(f is not None and f != s for f, s in zip(loaded.fixed, shape)):
            raise RequestRejected(400, "bad_image", f"this model takes inputs of shape {loaded.fixed}; the image "
                                  f"gives {shape} (its bundle does not resize)")
        # the hash of an image file's bytes, or of a JSON image's uint8 pixels; only when someone records them
        hashes = ([hashlib.sha256(it if isinstance(it, bytes) else it.tobytes()).hexdigest() for it in items]
                  if self.on_result is not None else [None] * len(items))
        return np.concatenate(xs), images, hashes


async def _read_body(request, limit: int) -> bytes:  # noqa: ANN001 - starlette Request
    """The body, refused with 413 as soon as it passes `limit` (never read whole into memory first)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise RequestRejected(400, "bad_header", "Content-Length is not a number")
        if int(declared) > limit:
            raise RequestRejected(413, "body_too_large", f"body of {int(declared):,} bytes; the limit is {limit:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestRejected(413, "body_too_large", f"body larger than the limit of {limit:,} bytes")
        chunks.append(chunk)
    if not size:
        raise RequestRejected(400, "empty", "empty request body: send an image file, multipart files or JSON pixels")
    return b"".join(chunks)


def _answer(content: dict, result: dict):  # noqa: ANN202 - JSONResponse
    """The JSON answer, with the request id in the X-Request-ID header as well."""
    from fastapi.responses import JSONResponse

    return JSONResponse(content, headers={"X-Request-ID": result["request_id"]})


@dataclass(frozen=True)
class Recording:
    """Whether and how `edgemap serve` records predictions in the results store (one writer per worker)."""

    enabled: bool = True
    retention: int = 100_000

    def __post_init__(self) -> None:
        if self.retention < 1:
            raise EdgemapError(f"--retention must be >= 1 prediction, got {self.retention}")


def build_app(bundle: "str | Path", config: ServeConfig, recording: Optional[Recording] = None) -> tuple:
    """(app, close): the app with its own results-store recorder; run once per worker process."""
    from edgemap.deploy.recording import open_recorder

    # block_when_behind=False: with the store locked for long, rows are dropped (and counted), never written on the loop
    recorder = (open_recorder(recording.enabled, bundle, recording.retention, block_when_behind=False)
                if recording is not None else None)
    try:
        if recorder is not None:
            recorder.start(bundle)  # a reload switches to the new bundle's sha256 on its first answer
        app = create_app(bundle, config, on_result=recorder)
    except BaseException:
        if recorder is not None:
            recorder.close()
        raise
    return app, (recorder.close if recorder is not None else lambda: None)


def serve(bundle: "str | Path", host: str = "127.0.0.1", port: int = 8000, config: ServeConfig = ServeConfig(),
          recording: Optional[Recording] = None, listen: Optional[Listen] = None) -> None:
    """Run the server until SIGINT/SIGTERM; on SIGTERM stop accepting, finish in-flight requests, return.
    `listen` (TLS, workers, ...) overrides host, port and config's http/loop."""
    listen = listen or Listen(host, port, config.http, config.loop)
    # beyond this, uvicorn itself answers 503 (per worker)
    listen = Listen(**{**vars(listen), "limit_concurrency": 2 * config.batching.max_queue + 32})
    http, loop = uvicorn_choice(listen.http, listen.loop)
    workers = f", {listen.workers} workers" if listen.workers > 1 else ""
    banner = f"{bundle} on {listen.url()} (POST /v1/predict, GET /docs, /metrics; {http}, {loop}{workers})"
    run_service(partial(build_app, bundle, config, recording), listen, "edgemap serve", banner, config.token)
