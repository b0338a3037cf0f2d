"""What every edgemap HTTP app has, whatever it serves (the prediction server, the split tail server):

    GET /healthz   the process is up (open even with a token)
    GET /readyz    ready to work: loaded and not shutting down (open)
    GET /metrics   Prometheus text format (edgemap.deploy.http_gate.ServerMetrics; summed over workers)
    GET /docs      Swagger UI served from local files (edgemap.deploy.docs), /openapi.json

plus the Gate middleware (bearer token, load shedding, requests counted by path and code) and request ids
(edgemap.deploy.http_gate.request_id).
"""

# no `from __future__ import annotations`: FastAPI must see the real types of the routes' local imports

import asyncio
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Callable, Optional

from edgemap.deploy.http_gate import Gate, ServerMetrics

GAUGE_REFRESH_S = 0.5  # with several workers, each refreshes its gauges this often (a scrape reaches only one)


@dataclass
class Service:
    """One app's shared parts: its metrics, its readiness, and what runs at startup and shutdown."""

    metrics: ServerMetrics
    ready_info: Callable[[], dict] = dict  # extra fields of a ready /readyz answer
    gauges: Callable[[], None] = lambda: None  # sets the metrics' gauges from the app's state
    on_start: list = field(default_factory=list)  # functions called once the loop runs
    on_stop: list = field(default_factory=list)  # async functions awaited after uvicorn stopped accepting
    ready: bool = True
    started: float = field(default_factory=time.time)

    def lifespan(self):  # noqa: ANN201 - FastAPI lifespan
        @asynccontextmanager
        async def lifespan(_app):  # noqa: ANN001, ANN202
            for start in self.on_start:
                start()
            refresher = asyncio.ensure_future(self._refresh_gauges()) if self.metrics.multiprocess else None
            yield
            self.ready = False  # uvicorn has stopped accepting and waited for open requests
            if refresher is not None:
                refresher.cancel()
            for stop in self.on_stop:
                await stop()

        return lifespan

    async def _refresh_gauges(self) -> None:
        while True:
            self.gauges()
            await asyncio.sleep(GAUGE_REFRESH_S)


def new_app(service: Service, title: str, version: str):  # noqa: ANN201 - fastapi.FastAPI
    """A FastAPI app with offline /docs, /healthz, /readyz and /metrics (call guard() after adding routes)."""
    from fastapi import FastAPI

    from edgemap.deploy.docs import add_offline_docs

    app = FastAPI(title=title, version=version, lifespan=service.lifespan(), docs_url=None, redoc_url=None)
    add_offline_docs(app)
    _add_probe_routes(app, service)
    return app


def _add_probe_routes(app, service: Service) -> None:  # noqa: ANN001 - fastapi.FastAPI
    from fastapi.responses import JSONResponse, Response

    @app.get("/healthz")
    def healthz() -> dict:
        """The process is up."""
        return {"status": "ok", "uptime_s": round(time.time() - service.started, 1)}

    @app.get("/readyz")
    def readyz():  # noqa: ANN202
        """Ready to take requests: loaded, and not shutting down."""
        if not service.ready:
            return JSONResponse({"status": "shutting down"}, status_code=503)
        return {"status": "ready", **service.ready_info()}

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        """Prometheus text format: requests by route and code, latency, batches, queue, model load time."""
        service.gauges()
        body, content_type = service.metrics.render()
        return Response(body, media_type=content_type)


def guard(app, service: Service, token: Optional[str], shed: Optional[Callable[[str], bool]] = None,  # noqa: ANN001
          on_refused: Optional[Callable] = None) -> None:
    """Put the Gate (token, shedding, counting) in front of every route the app has now; `on_refused(path,
    status, reason, request id, ms)` hears of each request it refuses."""
    from edgemap.deploy.docs import ASSET_PATHS

    known = frozenset(getattr(r, "path", "") for r in app.routes)
    app.add_middleware(Gate, metrics=service.metrics, token=token, known_paths=known, shed=shed, open_paths=ASSET_PATHS,
                       on_refused=on_refused)
