"""What crosses the network: an activation (FP32, FP16, INT8, INT8 + zstd) or the input image (raw
pixels, PNG, JPEG, WebP). The body carries only the payload; shape, scale and zero-point travel in
headers, so an INT8 body is exactly a quarter of the FP32 one. numpy (+ zstandard, pillow); no torch.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from edgemap.errors import EdgemapError

ACTIVATION_ENCODINGS = ("fp32", "fp16", "int8", "int8-zstd")
ZSTD_LEVEL = 3  # level 3 (zstd's default) compressed post-ReLU INT8 activations within 3 % of level 19, ~20x faster
IMAGE_KINDS = ("raw", "png", "jpeg", "webp")
MAX_ELEMENTS = 64 * 2**20  # a request announcing more than this is refused before allocating


@dataclass(frozen=True)
class Payload:
    """A request body and the headers that describe it."""

    body: bytes
    headers: dict[str, str]


def encode_activation(x: np.ndarray, encoding: str) -> Payload:
    """One activation (any shape) as a body + headers. INT8: asymmetric per-tensor uint8 whose range
    covers 0 (post-ReLU tensors get zero-point 0, so their zeros stay zeros, which zstd then packs)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    headers = {"X-Encoding": encoding, "X-Shape": ",".join(map(str, x.shape))}
    if encoding == "fp32":
        return Payload(x.tobytes(), headers)
    if encoding == "fp16":
        return Payload(x.astype(np.float16).tobytes(), headers)
    if encoding not in ("int8", "int8-zstd"):
        raise EdgemapError(f"unknown activation encoding {encoding!r}; choose from {', '.join(ACTIVATION_ENCODINGS)}")
    lo, hi = min(float(x.min(initial=0.0)), 0.0), max(float(x.max(initial=0.0)), 0.0)
    scale = (hi - lo) / 255.0 or 1.0
    zero_point = int(round(-lo / scale))
    q = np.clip(np.rint(x / scale) + zero_point, 0, 255).astype(np.uint8)
    headers.update({"X-Scale": repr(scale), "X-Zero-Point": str(zero_point)})
    body = q.tobytes()
    if encoding == "int8-zstd":
        body = _zstd().ZstdCompressor(level=ZSTD_LEVEL).compress(body)
    return Payload(body, headers)


def decode_activation(body: bytes, headers: dict[str, str]) -> np.ndarray:
    """Inverse of encode_activation; a body that does not match its headers is a one-line error."""
    h = {k.lower(): v for k, v in headers.items()}
    encoding = h.get("x-encoding", "")
    try:
        shape = tuple(int(d) for d in h.get("x-shape", "").split(","))
    except ValueError:
        raise EdgemapError(f"bad X-Shape header {h.get('x-shape')!r}") from None
    count = int(np.prod(shape)) if shape else 0
    if not shape or min(shape) < 1 or count > MAX_ELEMENTS:
        raise EdgemapError(f"bad X-Shape header {h.get('x-shape')!r}")
    if encoding in ("fp32", "fp16"):
        dtype = np.float32 if encoding == "fp32" else np.float16
        _expect(len(body), count * np.dtype(dtype).itemsize, encoding)
        return np.frombuffer(body, dtype=dtype).astype(np.float32).reshape(shape)
    if encoding not in ("int8", "int8-zstd"):
        raise EdgemapError(f"unknown activation encoding {encoding!r}; choose from {', '.join(ACTIVATION_ENCODINGS)}")
    try:
        scale, zero_point = float(h["x-scale"]), int(h["x-zero-point"])
    except (KeyError, ValueError):
        raise EdgemapError("an INT8 activation needs numeric X-Scale and X-Zero-Point headers") from None
    if encoding == "int8-zstd":
        try:
            body = _zstd().ZstdDecompressor().decompress(body, max_output_size=count)
        except _zstd().ZstdError as exc:
            raise EdgemapError(f"int8-zstd body does not decompress ({exc})") from None
    _expect(len(body), count, encoding)
    q = np.frombuffer(body, dtype=np.uint8).reshape(shape)
    return ((q.astype(np.float32) - zero_point) * np.float32(scale)).astype(np.float32)


def _expect(got: int, want: int, encoding: str) -> None:
    if got != want:
        raise EdgemapError(f"{encoding} body has {got} bytes; the announced shape needs {want}")


def _zstd():  # noqa: ANN202 - module
    try:
        import zstandard
    except ImportError:
        raise EdgemapError("int8-zstd needs the zstandard package (pip install zstandard)") from None
    return zstandard


def encode_image(image: np.ndarray, kind: str, quality: int = 75) -> Payload:
    """One uint8 H x W x C image as raw pixels, PNG, JPEG or WebP (lossy kinds at `quality`)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if kind == "raw":
        return Payload(image.tobytes(), {"X-Encoding": "raw", "X-Shape": ",".join(map(str, image.shape))})
    if kind not in IMAGE_KINDS:
        raise EdgemapError(f"unknown image encoding {kind!r}; choose from {', '.join(IMAGE_KINDS)}")
    from PIL import Image

    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    buf = io.BytesIO()
    opts = {"png": {"format": "PNG"}, "jpeg": {"format": "JPEG", "quality": quality},
            "webp": {"format": "WEBP", "quality": quality, "method": 4}}[kind]
    pil.save(buf, **opts)
    return Payload(buf.getvalue(), {"X-Encoding": kind})


def decode_image(body: bytes, headers: dict[str, str], channels: int = 3) -> np.ndarray:
    """Inverse of encode_image: uint8 H x W x `channels`."""
    h = {k.lower(): v for k, v in headers.items()}
    if h.get("x-encoding") == "raw":
        try:
            shape = tuple(int(d) for d in h.get("x-shape", "").split(","))
        except ValueError:
            raise EdgemapError(f"bad X-Shape header {h.get('x-shape')!r}") from None
        if len(shape) != 3 or min(shape) < 1 or int(np.prod(shape)) > MAX_ELEMENTS:
            raise EdgemapError(f"raw pixels need X-Shape H,W,C; got {h.get('x-shape')!r}")
        _expect(len(body), int(np.prod(shape)), "raw")
        return np.frombuffer(body, dtype=np.uint8).reshape(shape)
    from PIL import Image, UnidentifiedImageError

    try:
        pil = Image.open(io.BytesIO(body))
        pil.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise EdgemapError(f"the body is not a readable image ({exc.__class__.__name__})") from None
    arr = np.asarray(pil.convert("L" if channels == 1 else "RGB"))
    return arr[..., None] if arr.ndim == 2 else arr


def option_label(point: str, encoding: str, quality: int | None = None) -> str:
    """Human label of an option: 'device', 'input/jpeg-q75', 'c5/int8-zstd'."""
    return point if point == "device" else f"{point}/{encoding}" + (f"-q{quality}" if quality is not None else "")
