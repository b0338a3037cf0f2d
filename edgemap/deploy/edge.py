"""The edge runtime: open a bundle, verify it, classify images. numpy + one runtime; never torch."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemap.deploy.bundle import check_files, member_path, read_manifest
from edgemap.errors import EdgemapError

SELFTEST_MIN_AGREEMENT = 1.0  # the device must reproduce every self-test top-1


@dataclass(frozen=True)
class Prediction:
    """Top-k classes of one image, best first."""

    labels: list[str]
    indices: list[int]
    probabilities: list[float]

    def to_dict(self) -> dict:
        return {"top1": self.labels[0], "labels": self.labels, "indices": self.indices,
                "probabilities": [round(p, 6) for p in self.probabilities]}


@dataclass(frozen=True)
class FileResult:
    """One image file classified, with what a results store keeps of it."""

    path: Path
    prediction: Prediction
    data: bytes  # the file's bytes (hashed, not kept)
    image: np.ndarray  # decoded uint8 H x W x C
    latency_ms: float  # decode + preprocess + inference of this file


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class EdgeModel:
    """A verified bundle ready to classify uint8 images or image files, preprocessing taken from the bundle."""

    def __init__(self, bundle: str | Path, threads: int = 0, verify: bool = True,
                 public_key: str | Path | None = None) -> None:
        """Open `bundle`; `verify` checks hashes and the self-test, `public_key` also its Ed25519 signature."""
        from edgemap.data.preprocess import PreprocessSpec
        from edgemap.runtime.registry import load_session

        self.bundle = Path(bundle)
        self.manifest = read_manifest(self.bundle, public_key)
        if verify or public_key is not None:
            check_files(self.bundle, self.manifest)
        self.class_names = list(self.manifest["class_names"])
        self.preprocess = PreprocessSpec.from_dict(self.manifest["preprocess"], f"{self.bundle}/manifest.json")
        self.session = load_session(self.manifest["backend"], member_path(self.bundle, self.manifest["model"]), threads)
        self.selftest: dict | None = self.run_selftest() if verify else None

    def logits(self, images: np.ndarray | list[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """Raw model outputs for uint8 images (N x H x W x C, or a list of H x W x C of any sizes),
        preprocessed exactly as the bundle says."""
        x = (np.concatenate([self.preprocess.apply(im) for im in images]) if isinstance(images, list)
             else self.preprocess.apply(images))
        return self.run_inputs(x, batch_size)

    def run_inputs(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Raw model outputs for already preprocessed inputs (the server preprocesses per request)."""
        fixed = self.session.inputs()[0].shape[0]
        step = fixed if fixed else batch_size
        return np.concatenate([self.session.run(x[i:i + step]) for i in range(0, len(x), step)])

    def classify(self, images: np.ndarray | list[np.ndarray], top_k: int = 3) -> list[Prediction]:
        """Top-k predictions per image."""
        return self.predictions(self.logits(images), top_k)

    def predictions(self, logits: np.ndarray, top_k: int = 3) -> list[Prediction]:
        """Top-k predictions from raw outputs, one per row."""
        probs = softmax(logits.astype(np.float64))
        k = min(top_k, probs.shape[1])
        # stable: INT8 logits can tie exactly, and top-1 must then be argmax's (the lowest index), as the host's
        # evaluation and the self-test count it; numpy's default sort is not stable (SIMD sorts on AVX-512)
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        return [Prediction([self.class_names[j] for j in row], [int(j) for j in row], [float(probs[i, j]) for j in row])
                for i, row in enumerate(order)]

    def classify_files(self, paths: list[str | Path], top_k: int = 3) -> list[Prediction]:
        """Decode image files (any size: each is resized as the bundle's preprocessing says) and classify."""
        from edgemap.data.image_folder import read_image

        return self.classify([read_image(Path(p)) for p in paths], top_k)

    def classify_file(self, path: str | Path, top_k: int = 3) -> FileResult:
        """Classify one image file, timed (decode + preprocess + inference), keeping its bytes and pixels."""
        from edgemap.data.image_folder import read_image

        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise EdgemapError(f"{path}: cannot read ({exc.strerror})") from None
        t0 = time.perf_counter()
        image = read_image(path)
        prediction = self.classify([image], top_k)[0]
        return FileResult(path, prediction, data, image, round((time.perf_counter() - t0) * 1000, 3))

    def run_selftest(self) -> dict:
        """Run the bundled self-test images; refuse the bundle when the device disagrees with the host."""
        with np.load(member_path(self.bundle, "selftest.npz"), allow_pickle=False) as z:
            images, expected = z["images"], z["logits"]
        got = self.logits(images)
        agree = float((got.argmax(1) == expected.argmax(1)).mean())
        diff = float(np.abs(got - expected).max())
        if agree < SELFTEST_MIN_AGREEMENT:
            raise EdgemapError(f"{self.bundle}: self-test failed: top-1 agrees on {agree:.0%} of {len(images)} images "
                               f"(max |diff| {diff:.3g}); this device does not compute what the host measured")
        return {"images": len(images), "top1_agreement": agree, "max_abs_diff": diff}

    def close(self) -> None:
        """Release the runtime session."""
        self.session.close()
