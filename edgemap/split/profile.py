"""Profile every split point of a model: head latency on the device, tail latency on the server (measured
where the profile is this host, estimated otherwise, labelled), MACs, and what crosses: bytes of the
activation in FP32/FP16/INT8/INT8+zstd and of the input as raw/PNG/JPEG/WebP, each measured on real
images, with the top-1 accuracy each encoding leaves and the time encoding and decoding take here.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgemap.data.dataset import ImageSet
from edgemap.errors import EdgemapError
from edgemap.split import codec
from edgemap.split.graph import CutPoint, extract, load_onnx, require_cuts
from edgemap.split.source import SplitSource

LATENCY_RUNS = 40       # timed batch-1 runs per part (median), after 5 warm-up runs
QUALITIES = (50, 75, 90)  # JPEG / WebP qualities offered for sending the input
BATCH = 256
PROFILE_VERSION = 2     # in the cache key: 2 = codec times are per-image medians (1 was means)


def write_parts(src: SplitSource, work: Path) -> tuple[list[CutPoint], dict[str, tuple[Path, Path]]]:
    """Every cut's head and tail written as ONNX files under `work` (reused when already there)."""
    import onnx

    model = load_onnx(src.onnx_path)
    cuts = require_cuts(model, src.name)
    parts = {}
    folder = work / f"parts-{src.sha256[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    for cut in cuts:
        head_path, tail_path = folder / f"{cut.name}_head.onnx", folder / f"{cut.name}_tail.onnx"
        if not (head_path.is_file() and tail_path.is_file()):
            head, tail = extract(model, cut)
            onnx.save(head, str(head_path))
            onnx.save(tail, str(tail_path))
        parts[cut.name] = (head_path, tail_path)
    return cuts, parts


def part_latency(path: Path, profile: str, x: np.ndarray, threads: int = 0) -> dict:
    """Batch-1 latency of one ONNX part on a device: measured when the profile is `host`, else estimated."""
    from edgemap.devices.catalogue import resolve
    from edgemap.devices.estimate import estimate

    prof = resolve(profile)
    if prof.name != "host":
        est = estimate(path, prof, threads=threads or None)
        return {"ms": est.latency_s.value * 1e3, "basis": "estimated", "how": est.latency_s.how}
    from edgemap.runtime.onnxruntime_backend import OrtSession

    with OrtSession(path, threads=threads, providers=["CPUExecutionProvider"]) as sess:
        for _ in range(5):
            sess.run(x)
        times = []
        for _ in range(LATENCY_RUNS):
            t0 = time.perf_counter()
            sess.run(x)
            times.append(time.perf_counter() - t0)
    ms = np.asarray(times) * 1e3
    return {"ms": float(np.median(ms)), "basis": "measured",
            "how": f"ONNX Runtime CPU on this host, median of {LATENCY_RUNS} batch-1 runs (p90 {np.percentile(ms, 90):.3f} ms)"}


def run_batched(path: Path, x: np.ndarray, threads: int = 0) -> np.ndarray:
    """Outputs of an ONNX file for many inputs, in batches (batch 1 when the model fixes its batch size)."""
    from edgemap.runtime.onnxruntime_backend import OrtSession

    with OrtSession(path, threads=threads, providers=["CPUExecutionProvider"]) as sess:
        step = sess.inputs()[0].shape[0] or BATCH
        return np.concatenate([sess.run(x[i:i + step]) for i in range(0, len(x), step)])


def activation_stats(acts: np.ndarray, tail: Path, labels: np.ndarray, whole_logits: np.ndarray) -> dict:
    """Per encoding: mean bytes per image, encode/decode ms per image, top-1, and top-1 agreement with the whole model."""
    out = {}
    for enc in codec.ACTIVATION_ENCODINGS:
        sizes, t_enc, t_dec, decoded = [], [], [], np.empty_like(acts)
        for i in range(len(acts)):
            t0 = time.perf_counter()
            p = codec.encode_activation(acts[i:i + 1], enc)
            t1 = time.perf_counter()
            decoded[i] = codec.decode_activation(p.body, p.headers)[0]
            t_enc.append(t1 - t0)
            t_dec.append(time.perf_counter() - t1)
            sizes.append(len(p.body))
        logits = whole_logits if enc == "fp32" else run_batched(tail, decoded)
        if enc == "fp32" and not np.array_equal(run_batched(tail, decoded), whole_logits):
            raise EdgemapError(f"{tail.name}: head + tail with FP32 activations differ from the whole model")
        out[enc] = {"bytes": float(np.mean(sizes)), "bytes_max": int(max(sizes)), **_codec_ms(t_enc, t_dec), **_accuracy(logits, labels, whole_logits)}
    return out


def _codec_ms(t_enc: list[float], t_dec: list[float]) -> dict:
    """Per-image encode/decode ms: the median, like every part latency, since a request pays the typical codec
    time; the mean (kept beside it) is inflated by load bursts on a shared host and over-predicted PNG/JPEG/WebP
    by ~1 ms per request against raw input (split_bench, issue 21 follow-up)."""
    return {"encode_ms": float(np.median(t_enc) * 1e3), "decode_ms": float(np.median(t_dec) * 1e3),
            "encode_ms_mean": float(np.mean(t_enc) * 1e3), "decode_ms_mean": float(np.mean(t_dec) * 1e3)}


def _accuracy(logits: np.ndarray, labels: np.ndarray, reference: np.ndarray) -> dict:
    pred = logits.argmax(1)
    return {"top1": float((pred == labels).mean()), "agreement": float((pred == reference.argmax(1)).mean())}


def input_stats(src: SplitSource, images: np.ndarray, labels: np.ndarray, whole_logits: np.ndarray,
                qualities: tuple[int, ...]) -> list[dict]:
    """Sending the input instead: raw pixels, PNG, and JPEG/WebP at each quality, with the accuracy each leaves."""
    rows = []
    channels = images.shape[-1]
    for kind, q in [("raw", None), ("png", None)] + [(k, q) for k in ("jpeg", "webp") for q in qualities]:
        sizes, t_enc, t_dec, decoded = [], [], [], []
        for im in images:
            t0 = time.perf_counter()
            p = codec.encode_image(im, kind, q or 75)
            t1 = time.perf_counter()
            decoded.append(codec.decode_image(p.body, p.headers, channels))
            t_enc.append(t1 - t0)
            t_dec.append(time.perf_counter() - t1)
            sizes.append(len(p.body))
        logits = (whole_logits if kind in ("raw", "png")
                  else run_batched(src.onnx_path, src.spec.apply(np.stack(decoded))))
        rows.append({"encoding": kind, "quality": q, "bytes": float(np.mean(sizes)), "bytes_max": int(max(sizes)),
                     **_codec_ms(t_enc, t_dec), **_accuracy(logits, labels, whole_logits)})
    return rows


def preprocess_ms(src: SplitSource, image: np.ndarray, runs: int = 50) -> float:
    """Median time to turn one uint8 image into the model's input on this host (resize, scale, normalise)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        src.spec.apply(image[None])
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def device_power(device: str) -> dict:
    """Idle and all-cores-busy board power of a device profile (watts), with where the figures come from."""
    from edgemap.devices.catalogue import resolve

    power = resolve(device).power
    return {"idle_w": power.idle_w.value, "active_w": power.active_w.value,
            "source": f"device profile: idle {power.idle_w.basis}, active {power.active_w.basis}"}


def profile_split(src: SplitSource, data: ImageSet, device: str, server: str, work: Path,
                  qualities: tuple[int, ...] = QUALITIES, threads: int = 0) -> dict:
    """The whole profile as a JSON-ready dict (see the module docstring)."""
    from edgemap.core.evidence import machine_evidence
    from edgemap.devices.graph import analyse

    cuts, parts = write_parts(src, work)
    x = src.spec.apply(data.images)
    whole_logits = run_batched(src.onnx_path, x, threads)
    one = x[:1]
    whole = {"macs": analyse(src.onnx_path).macs, "device": part_latency(src.onnx_path, device, one, threads),
             "server": part_latency(src.onnx_path, server, one, threads),
             **_accuracy(whole_logits, data.labels, whole_logits),
             "top1_exact": float((whole_logits.argmax(1) == data.labels)[data.lossless].mean()) if data.lossless.any() else None}
    rows = []
    for cut in cuts:
        head, tail = parts[cut.name]
        acts = run_batched(head, x, threads)
        rows.append({"name": cut.name, "tensor": cut.tensor, "op": cut.producer_op, "shape": list(acts.shape[1:]),
                     "elements": int(np.prod(acts.shape[1:])), "nonnegative": bool(acts.min() >= 0),
                     "head_macs": analyse(head).macs, "head_device": part_latency(head, device, one, threads),
                     "tail_server": part_latency(tail, server, acts[:1], threads),
                     "encodings": activation_stats(acts, tail, data.labels, whole_logits)})
    return {"model": src.name, "model_sha256": src.sha256, "onnx": str(src.onnx_path), "device": device, "server": server,
            "power": device_power(device), "preprocess_ms": preprocess_ms(src, data.images[0]), "num_classes": int(whole_logits.shape[1]),
            "data": {"source": data.source, "images": len(data), "exact_images": int(data.lossless.sum())},
            "whole": whole, "cuts": rows, "inputs": input_stats(src, data.images, data.labels, whole_logits, qualities),
            "evidence": machine_evidence(threads or None)}


def load_or_profile(src: SplitSource, data: ImageSet, device: str, server: str, work: Path,
                    qualities: tuple[int, ...] = QUALITIES, threads: int = 0, fresh: bool = False) -> dict:
    """profile_split, cached in `work` by model, devices, data and qualities (latencies measured on this host
    are re-measured only with `fresh`)."""
    import hashlib
    import json

    from edgemap.core.atomic import write_json

    key = hashlib.sha256(json.dumps([PROFILE_VERSION, src.sha256, src.spec.to_dict(), device, server, data.source, len(data),
                                     hashlib.sha256(data.images.tobytes()).hexdigest(), list(qualities), threads]).encode())
    path = work / f"profile-{key.hexdigest()[:16]}.json"
    if path.is_file() and not fresh:
        return json.loads(path.read_text())
    result = profile_split(src, data, device, server, work, qualities, threads)
    write_json(path, result)
    return result
