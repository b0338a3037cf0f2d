"""Preprocessing spec: how uint8 images become the float tensor a model expects.

One spec (resize, scale, mean/std, channel order, layout) is given on the command line as a
compact string or in a small YAML file, stored as a dict in recipes and bundles, and applied by
the same numpy + pillow code in evaluation and on the device. No torch here: the edge runtime
imports this module.

Order of operations (fixed, so host and device agree bit for bit):
  1. resize to (H, W) with pillow bilinear, on uint8 (the same call the image-folder loader makes);
  2. channel conversion: rgb (gray images are replicated), bgr (reversed), gray (pillow's
     ITU-R 601-2 luma, integer arithmetic);
  3. x = uint8 * scale, then (x - mean) / std per channel, in float32;
  4. layout: nchw (transposed) or nhwc.

Compact string: comma-separated `key=value` items and presets, later items overriding earlier:
  "cifar10"                                   CIFAR-10 mean/std (the zoo's Normalization)
  "imagenet,resize=224x224,channels=bgr"
  "resize=28x28,channels=gray,scale=1/255,mean=0.5,std=0.5,layout=nchw"
Per-channel values are separated by '/' or ':' ("mean=0.485/0.456/0.406").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemap.data.transforms import CIFAR10_MEAN, CIFAR10_STD, Normalization
from edgemap.errors import EdgemapError

CHANNEL_ORDERS = ("rgb", "bgr", "gray")
LAYOUTS = ("nchw", "nhwc")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PRESETS: dict[str, dict] = {
    "unit": {"scale": 1 / 255},  # [0, 1]
    "raw": {"scale": 1.0},  # [0, 255]
    "cifar10": {"scale": 1 / 255, "mean": CIFAR10_MEAN, "std": CIFAR10_STD},
    "imagenet": {"scale": 1 / 255, "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
    "symmetric": {"scale": 1 / 255, "mean": (0.5,), "std": (0.5,)},  # [-1, 1]
}
_KEYS = ("resize", "scale", "mean", "std", "channels", "layout")
_ALIASES = {"order": "channels", "size": "resize"}
_LUMA = (19595, 38470, 7471)  # pillow's RGB -> L weights, in 1/65536


@dataclass(frozen=True)
class PreprocessSpec:
    """uint8 N x H x W x C images -> float32 model input; see the module docstring for the order."""

    resize: tuple[int, int] | None = None  # (H, W); None keeps the images' size
    scale: float = 1 / 255
    mean: tuple[float, ...] = (0.0,)  # one value for all channels, or one per channel
    std: tuple[float, ...] = (1.0,)
    channels: str = "rgb"
    layout: str = "nchw"

    def __post_init__(self) -> None:
        if self.channels not in CHANNEL_ORDERS:
            raise EdgemapError(f"preprocess: channels must be one of {', '.join(CHANNEL_ORDERS)}, got {self.channels!r}")
        if self.layout not in LAYOUTS:
            raise EdgemapError(f"preprocess: layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.resize is not None and (len(self.resize) != 2 or min(self.resize) < 1):
            raise EdgemapError(f"preprocess: resize must be two positive sizes (H, W), got {self.resize}")
        if not np.isfinite(self.scale) or self.scale <= 0:
            raise EdgemapError(f"preprocess: scale must be a positive number, got {self.scale}")
        for name, values in (("mean", self.mean), ("std", self.std)):
            if len(values) not in (1, self.num_channels):
                raise EdgemapError(f"preprocess: {name} has {len(values)} values; channels={self.channels} "
                                   f"needs 1 or {self.num_channels}")
            if not all(np.isfinite(v) for v in values):
                raise EdgemapError(f"preprocess: {name} must be finite numbers, got {list(values)}")
        if any(v <= 0 for v in self.std):
            raise EdgemapError(f"preprocess: std must be positive, got {list(self.std)}")

    @property
    def num_channels(self) -> int:
        """Channels of the model input: 1 for gray, else 3."""
        return 1 if self.channels == "gray" else 3

    def input_shape(self, image_hw: tuple[int, int]) -> tuple[int, int, int]:
        """Per-sample shape this spec produces from images of size `image_hw` (C,H,W or H,W,C)."""
        h, w = self.resize or image_hw
        return (self.num_channels, h, w) if self.layout == "nchw" else (h, w, self.num_channels)

    def value_range(self) -> tuple[float, float]:
        """Smallest and largest value any channel can take after preprocessing (inputs 0..255)."""
        lo_hi = [((0 * self.scale - m) / s, (255 * self.scale - m) / s) for m, s in zip(*self._per_channel())]
        return min(v[0] for v in lo_hi), max(v[1] for v in lo_hi)

    def apply(self, images: np.ndarray) -> np.ndarray:
        """uint8 N x H x W x C (or one H x W x C image) -> float32 model input, batch axis always present."""
        x = images[None] if isinstance(images, np.ndarray) and images.ndim == 3 else images
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4 or x.shape[3] not in (1, 3):
            raise EdgemapError(f"preprocess: images must be uint8 N x H x W x C with C in (1, 3), got "
                               f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}")
        if self.resize is not None and x.shape[1:3] != tuple(self.resize):
            x = resize_images(x, self.resize)
        x = convert_channels(x, self.channels)
        x = _scale(x, self.scale)
        mean, std = (np.asarray(v, np.float32) for v in self._per_channel())
        x = (x - mean) / std
        if self.layout == "nchw":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x, dtype=np.float32)

    def _per_channel(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        n = self.num_channels
        return (self.mean * n if len(self.mean) == 1 else self.mean), (self.std * n if len(self.std) == 1 else self.std)

    def to_dict(self) -> dict:
        """Plain JSON/YAML-ready dict (stored in recipes and bundles)."""
        return {"resize": list(self.resize) if self.resize else None, "scale": self.scale, "mean": list(self.mean),
                "std": list(self.std), "channels": self.channels, "layout": self.layout}

    @classmethod
    def from_dict(cls, d: dict, where: str = "preprocess") -> "PreprocessSpec":
        """Inverse of to_dict; missing keys take their defaults, unknown keys are an error."""
        if not isinstance(d, dict):
            raise EdgemapError(f"{where}: preprocessing must be a mapping, got {type(d).__name__}")
        d = {_ALIASES.get(k, k): v for k, v in d.items()}
        unknown = sorted(set(d) - set(_KEYS))
        if unknown:
            raise EdgemapError(f"{where}: unknown preprocessing key(s) {', '.join(unknown)}; known: {', '.join(_KEYS)}")
        try:
            kw: dict = {}
            if d.get("resize") is not None:
                kw["resize"] = _size(d["resize"])
            if "scale" in d:
                kw["scale"] = _number(d["scale"])
            for k in ("mean", "std"):
                if k in d:
                    kw[k] = _floats(d[k])
            for k in ("channels", "layout"):
                if k in d:
                    kw[k] = str(d[k]).lower()
        except (TypeError, ValueError, ZeroDivisionError) as exc:
            raise EdgemapError(f"{where}: bad preprocessing value ({exc})") from None
        return cls(**kw)

    def to_string(self) -> str:
        """The compact command-line form; parse_preprocess(spec.to_string()) == spec."""
        scale = "1/255" if self.scale == 1 / 255 else repr(self.scale)
        items = [f"resize={self.resize[0]}x{self.resize[1]}"] if self.resize else []
        items += [f"scale={scale}", "mean=" + "/".join(repr(float(v)) for v in self.mean),
                  "std=" + "/".join(repr(float(v)) for v in self.std), f"channels={self.channels}", f"layout={self.layout}"]
        return ",".join(items)

    @classmethod
    def from_normalization(cls, norm: Normalization) -> "PreprocessSpec":
        """The spec that computes exactly what transforms.to_nchw_float(images, norm) computes."""
        return cls(scale=1 / 255, mean=tuple(norm.mean), std=tuple(norm.std))


def parse_preprocess(text: str | Path | None) -> PreprocessSpec:
    """A spec from a compact string, a YAML file path (.yaml/.yml), or None (the 'unit' preset: x / 255)."""
    if text is None or str(text).strip() == "":
        return PreprocessSpec()
    s = str(text).strip()
    if s.lower().endswith((".yaml", ".yml")):
        return load_preprocess_yaml(s)
    merged: dict = {}
    for item in (i.strip() for i in s.split(",")):
        if not item:
            continue
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq:
            if key not in PRESETS:
                raise EdgemapError(f"preprocess {s!r}: {item!r} is neither key=value nor a preset "
                                   f"({', '.join(PRESETS)})")
            merged.update(PRESETS[key])
        else:
            merged[_ALIASES.get(key, key)] = value.strip()
    return PreprocessSpec.from_dict(merged, where=f"preprocess {s!r}")


def load_preprocess_yaml(path: str | Path) -> PreprocessSpec:
    """A spec from a YAML file holding the dict form (top level, or under a `preprocess:` key)."""
    from edgemap.core.files import read_yaml

    d = read_yaml(path, "preprocessing file")
    if isinstance(d, dict) and isinstance(d.get("preprocess"), (dict, str)):
        d = d["preprocess"]
    if isinstance(d, str):
        return parse_preprocess(d)
    return PreprocessSpec.from_dict(d, where=str(path))


def resize_images(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of uint8 N x H x W x C to (H, W) with pillow, image by image."""
    from PIL import Image

    h, w = size
    out = np.empty((len(images), h, w, images.shape[3]), np.uint8)
    for i, img in enumerate(images):
        im = Image.fromarray(img[..., 0] if img.shape[2] == 1 else img)
        r = np.asarray(im.resize((w, h), Image.BILINEAR))
        out[i] = r[..., None] if r.ndim == 2 else r
    return out


def convert_channels(images: np.ndarray, channels: str) -> np.ndarray:
    """uint8 RGB or gray N x H x W x C -> the requested order (gray uses pillow's exact integer luma)."""
    c = images.shape[3]
    if channels == "gray":
        if c == 1:
            return images
        rgb = images.astype(np.uint32)
        luma = (rgb[..., 0] * _LUMA[0] + rgb[..., 1] * _LUMA[1] + rgb[..., 2] * _LUMA[2] + 0x8000) >> 16
        return luma.astype(np.uint8)[..., None]
    rgb = np.repeat(images, 3, axis=3) if c == 1 else images
    return rgb[..., ::-1] if channels == "bgr" else rgb


def _scale(x: np.ndarray, scale: float) -> np.ndarray:
    # x / 255 and x * (1/255) differ in the last bit; divide when the scale is 1/integer so a spec
    # reproduces transforms.to_nchw_float exactly
    inv = 1 / scale
    if inv == round(inv):
        return x.astype(np.float32) / np.float32(inv)
    return x.astype(np.float32) * np.float32(scale)


def _number(v: object) -> float:
    if isinstance(v, str) and "/" in v:
        num, den = v.split("/", 1)
        return float(num) / float(den)
    return float(v)  # type: ignore[arg-type]


def _floats(v: object) -> tuple[float, ...]:
    if isinstance(v, str):
        parts = v.replace(":", "/").split("/")
        return tuple(float(p) for p in parts)
    if isinstance(v, (int, float)):
        return (float(v),)
    return tuple(float(p) for p in v)  # type: ignore[union-attr]


def _size(v: object) -> tuple[int, int]:
    if isinstance(v, str):
        parts = v.lower().replace(",", "x").split("x")
        vals = [int(p) for p in parts]
    elif isinstance(v, int):
        vals = [v]
    else:
        vals = [int(p) for p in v]  # type: ignore[union-attr]
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2:
        raise ValueError(f"resize needs HxW, got {v!r}")
    return vals[0], vals[1]
