"""The server half: a FastAPI app that runs the tail of a split (or the whole model on a sent image).

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
from pathlib import Path

import numpy as np

from edgemap.errors import EdgemapError
from edgemap.split import codec

MAX_BODY = 4 * codec.MAX_ELEMENTS  # the largest FP32 activation a request may carry


class TailServer:
    """The server bundle loaded and verified: the whole model plus one tail session per split point."""

    def __init__(self, bundle: "str | Path", threads: int = 0) -> None:
        from edgemap.deploy.edge import EdgeModel
        from edgemap.runtime.onnxruntime_backend import OrtSession
        from edgemap.split.bundle import read_split_manifest, selftest_parts

        self.bundle = Path(bundle)
        self.manifest = read_split_manifest(self.bundle, "server")
        self.split = self.manifest["split"]
        self.whole = EdgeModel(self.bundle, threads=threads)  # verifies files and the whole-model self-test
        self.tails = {p: OrtSession(self.bundle / rec["file"], threads=threads, providers=["CPUExecutionProvider"])
                      for p, rec in self.split["points"].items()}
        selftest_parts(self.bundle, self.manifest, self.tails)
        self.lock = threading.Lock()  # one inference at a time: sessions are sized for the machine's cores
        self.stats = {"requests": 0, "refused": 0, "started": time.time()}

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


def create_app(server: TailServer):  # noqa: ANN201 - fastapi.FastAPI
    """A FastAPI app around a loaded TailServer."""
    from fastapi import FastAPI, Request, Response
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    app = FastAPI(title="edgemap split server")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "selftest": server.whole.selftest, **server.stats}

    @app.get("/info")
    def info() -> dict:
        return server.info()

    @app.get("/ping")
    def ping() -> Response:
        return Response(b"", media_type="application/octet-stream")

    @app.post("/probe")
    async def probe(request: Request) -> Response:
        body = await request.body()
        return Response(b"", media_type="application/octet-stream", headers={"X-Bytes": str(len(body))})

    @app.post("/infer")
    async def infer(request: Request) -> Response:
        server.stats["requests"] += 1
        headers = {k.lower(): v for k, v in request.headers.items()}
        if not headers.get("content-length", "0").isdigit() or int(headers.get("content-length", "0")) > MAX_BODY:
            server.stats["refused"] += 1
            return JSONResponse({"detail": f"body must state a Content-Length of at most {MAX_BODY} bytes"}, status_code=413)
        body = await request.body()
        t0 = time.perf_counter()
        try:
            point = server.check_identity(headers)
            logits = await run_in_threadpool(server.infer, point, body, headers)  # keeps /ping answering meanwhile
        except EdgemapError as exc:
            server.stats["refused"] += 1
            msg = str(exc)
            status = 409 if msg.startswith("409 ") else 400
            return JSONResponse({"detail": msg.removeprefix("409 ")}, status_code=status)
        ms = (time.perf_counter() - t0) * 1e3
        return Response(np.ascontiguousarray(logits, dtype=np.float32).tobytes(), media_type="application/octet-stream",
                        headers={"X-Server-Ms": f"{ms:.3f}", "X-Model-Sha256": server.split["model_sha256"]})

    return app


def serve(bundle: Path, host: str, port: int, threads: int = 0) -> None:
    """Load, verify and serve a server bundle until interrupted (keep-alive and request timeouts bounded)."""
    import uvicorn

    server = TailServer(bundle, threads)
    print(f"serving {len(server.tails)} split point(s) of {server.split['model_name']} "
          f"({server.split['model_sha256'][:12]}) on http://{host}:{port}", flush=True)
    uvicorn.run(create_app(server), host=host, port=port, log_level="warning", timeout_keep_alive=30,
                limit_concurrency=64, h11_max_incomplete_event_size=64 * 1024)
