"""HTTP server for a bundle (FastAPI): GET /health, GET /info, POST /predict with an image body.

POST /predict takes the raw bytes of a PNG/JPEG (any Content-Type) or a JSON body
{"pixels": [[[r, g, b], ...]]} holding one uint8 H x W x C image; it answers top-k classes.
"""

# no `from __future__ import annotations`: FastAPI must see the real Request type of the local import

import io
import threading
import time
from pathlib import Path

import numpy as np

from edgemap.deploy.edge import EdgeModel
from edgemap.errors import EdgemapError


def create_app(bundle: "str | Path", threads: int = 0, top_k: int = 3):  # noqa: ANN201 - fastapi.FastAPI
    """A FastAPI app serving one verified bundle."""
    from fastapi import FastAPI, HTTPException, Request

    model = EdgeModel(bundle, threads=threads)
    lock = threading.Lock()  # one inference at a time: the session is sized for the device's cores
    app = FastAPI(title="edgemap edge server", version=model.manifest.get("edgemap_version", "?"))
    stats = {"requests": 0, "errors": 0, "started": time.time()}

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "selftest": model.selftest, "uptime_s": round(time.time() - stats["started"], 1),
                "requests": stats["requests"], "errors": stats["errors"]}

    @app.get("/info")
    def info() -> dict:
        keep = ("backend", "class_names", "preprocess", "mapping", "metrics", "edgemap_version", "created")
        return {k: model.manifest[k] for k in keep if k in model.manifest}

    @app.post("/predict")
    async def predict(request: Request) -> dict:
        stats["requests"] += 1
        body = await request.body()
        try:
            image = _decode(body, request.headers.get("content-type", ""), model)
            t0 = time.perf_counter()
            with lock:
                pred = model.classify([image], top_k)[0]
            return {**pred.to_dict(), "latency_ms": round((time.perf_counter() - t0) * 1000, 3)}
        except EdgemapError as exc:
            stats["errors"] += 1
            raise HTTPException(status_code=400, detail=str(exc)) from None

    return app


def _decode(body: bytes, content_type: str, model: EdgeModel) -> np.ndarray:
    """Request body -> one uint8 H x W x C image at the size the bundle expects."""
    if not body:
        raise EdgemapError("empty request body: send an image file or JSON {\"pixels\": ...}")
    if content_type.startswith("application/json"):
        import json

        try:
            pixels = np.asarray(json.loads(body)["pixels"])
        except (ValueError, KeyError, TypeError) as exc:
            raise EdgemapError(f"JSON body must be {{\"pixels\": H x W x C uint8 array}} ({exc.__class__.__name__})") from None
        if pixels.ndim != 3 or pixels.min(initial=0) < 0 or pixels.max(initial=0) > 255:
            raise EdgemapError(f"pixels must be an H x W x C array of values 0..255, got shape {pixels.shape}")
        return pixels.astype(np.uint8) if pixels.shape[2] in (1, 3) else _bad_channels(pixels.shape)
    return decode_image_bytes(body)


def _bad_channels(shape: tuple) -> np.ndarray:
    raise EdgemapError(f"pixels must have 1 or 3 channels, got shape {shape}")


def decode_image_bytes(body: bytes) -> np.ndarray:
    """PNG/JPEG/BMP bytes -> uint8 H x W x 3 RGB (resizing is the bundle's preprocessing's job)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(body)) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError):
        raise EdgemapError("request body is not a readable image (PNG, JPEG or BMP)") from None


def serve(bundle: str | Path, host: str = "127.0.0.1", port: int = 8000, threads: int = 0) -> None:
    """Run the server until interrupted."""
    import uvicorn

    uvicorn.run(create_app(bundle, threads), host=host, port=port, log_level="warning")
