"""Request bodies -> uint8 images, with limits checked before anything big is built.

Accepted bodies (POST /v1/predict):
  - raw image bytes (PNG, JPEG or BMP; any Content-Type but JSON and multipart);
  - multipart/form-data with one or more file parts, each one image file;
  - JSON: one H x W x C array of 0..255 integers, an array of such images, or {"pixels": image} /
    {"images": [image, ...]}; inside "pixels"/"images" a grayscale image may also be H x W (the bare-array
    forms need C, since an H x W x C image and a list of H x W images cannot be told apart).
The pixel count of an image file is read from its header before it is decoded, so a decompression bomb
(a small file that decodes to gigabytes) is refused without being decoded. No torch here.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np

from edgemap.errors import EdgemapError

IMAGE_FORMATS = ("PNG", "JPEG", "BMP")


class RequestRejected(EdgemapError):
    """Bad input from a client: carries the HTTP status (4xx) and a short reason for the metrics."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    """What one request may hold."""

    max_body_bytes: int = 4 << 20
    max_pixels: int = 4096 * 4096
    max_images: int = 64

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_pixels", "max_images"):
            if getattr(self, name) < 1:
                raise EdgemapError(f"{name} must be >= 1, got {getattr(self, name)}")


def quiet_untrusted_input_logs() -> None:
    """Malformed bodies are answered 400; they must not also flood the log (python-multipart logs a warning per
    bad boundary) or the warnings (pillow warns about large images, which the pixel limit refuses anyway)."""
    import logging
    import warnings

    from PIL import Image

    logging.getLogger("python_multipart").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def decode_image_bytes(data: bytes, max_pixels: int = Limits.max_pixels) -> np.ndarray:
    """PNG/JPEG/BMP bytes -> uint8 H x W x 3 RGB; the size is checked from the header before decoding."""
    from PIL import Image

    if not data:
        raise RequestRejected(400, "empty", "empty image: send PNG, JPEG or BMP bytes")
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise RequestRejected(413, "too_many_pixels", f"image is {w} x {h} = {w * h:,} pixels; this server "
                                      f"decodes at most {max_pixels:,}")
            if w * h == 0:
                raise RequestRejected(400, "bad_image", f"image has no pixels ({w} x {h})")
            return np.asarray(im.convert("RGB"))
    except RequestRejected:
        raise
    except Image.DecompressionBombError:
        raise RequestRejected(413, "too_many_pixels", f"image is larger than {max_pixels:,} pixels") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure on untrusted bytes is the client's bad image
        raise RequestRejected(400, "bad_image", f"not a readable PNG, JPEG or BMP image ({exc.__class__.__name__})") from None


def header_pixels(data: bytes) -> int:
    """Pixel count an image file's header declares (no decoding); 0 when it cannot be read (decoding will say why)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as im:
            return im.size[0] * im.size[1]
    except Exception:  # noqa: BLE001 - untrusted bytes; decode_image_bytes gives the error
        return 0


def images_from_json(body: bytes, limits: Limits) -> list[np.ndarray]:
    """A JSON body -> uint8 images (see the module docstring for the accepted shapes)."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise RequestRejected(400, "bad_json", f"body is not valid JSON ({exc.__class__.__name__})") from None
    named = isinstance(doc, dict)
    if named:
        if "pixels" in doc:
            doc = [doc["pixels"]]
        elif "images" in doc and isinstance(doc["images"], list):
            doc = doc["images"]
        else:
            raise RequestRejected(400, "bad_json", 'JSON object must hold "pixels" (one image) or "images" (a list)')
    if not isinstance(doc, list) or not doc:
        raise RequestRejected(400, "bad_json", "JSON body must be an H x W x C array of 0..255 or a list of them")
    # a bare image is a list of rows of pixels of channels; a list of images is one level deeper
    one = not named and isinstance(doc[0], list) and bool(doc[0]) and isinstance(doc[0][0], list) \
        and bool(doc[0][0]) and not isinstance(doc[0][0][0], list)
    images = [doc] if one else doc
    if len(images) > limits.max_images:
        raise RequestRejected(413, "too_many_images", f"{len(images)} images in one request; at most {limits.max_images}")
    return [_pixels(im, limits.max_pixels, gray_2d=named) for im in images]


def _pixels(value: object, max_pixels: int, gray_2d: bool = False) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise RequestRejected(400, "bad_json", "pixels must be a rectangular H x W x C array of numbers") from None
    if gray_2d and arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3) or not np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
        shapes = "H x W (gray) or H x W x C" if gray_2d else "H x W x C"
        raise RequestRejected(400, "bad_json", f"pixels must be an {shapes} array of integers with C = 1 or 3, got "
                              f"{arr.dtype} {arr.shape}")
    if arr.shape[0] * arr.shape[1] > max_pixels or arr.size == 0:
        raise RequestRejected(413 if arr.size else 400, "too_many_pixels" if arr.size else "bad_json",
                              f"image of {arr.shape[0]} x {arr.shape[1]} pixels (allowed: 1..{max_pixels:,})")
    if arr.min() < 0 or arr.max() > 255:
        raise RequestRejected(400, "bad_json", f"pixel values must be 0..255, got {arr.min()}..{arr.max()}")
    return arr.astype(np.uint8)


async def multipart_files(body: bytes, headers, limits: Limits) -> list[bytes]:  # noqa: ANN001 - starlette Headers
    """The file parts of a multipart/form-data body (already read, within the body limit)."""
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    async def stream():  # noqa: ANN202 - the parser reads the body from an async iterator
        yield body

    try:
        form = await MultiPartParser(headers, stream(), max_files=limits.max_images, max_fields=limits.max_images,
                                     max_part_size=limits.max_body_bytes).parse()
    except (MultiPartException, ValueError, KeyError, AssertionError) as exc:
        raise RequestRejected(400, "bad_multipart", f"malformed multipart body ({str(exc)[:100] or exc.__class__.__name__})") from None
    files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
    try:
        if not files:
            raise RequestRejected(400, "bad_multipart", "multipart body holds no file part (send the image as a file)")
        return [f.file.read() for f in files]
    finally:
        await form.close()


def decode_all(items: list, limits: Limits) -> list[np.ndarray]:
    """Image bytes (or arrays already decoded from JSON) -> uint8 images."""
    if len(items) > limits.max_images:
        raise RequestRejected(413, "too_many_images", f"{len(items)} images in one request; at most {limits.max_images}")
    return [it if isinstance(it, np.ndarray) else decode_image_bytes(it, limits.max_pixels) for it in items]
