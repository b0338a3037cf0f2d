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
PROFILE_VERSION = 3     # in the cache key: 3 = codec times after an idle gap (2: tight-loop medians, 1: means)
CODEC_SAMPLES = 16      # images whose encode / decode are timed (bytes and accuracy use every image)
CODEC_GAP_S = 0.005     # idle before each timed encode / decode: inside a request the codec runs after a wait (for
                        # the network, the emulated device) with cold caches; a tight loop timed PNG at a third of
                        # that (benchmarks/split_codec_probe.py) and the plan under-predicted PNG by ~1.15 ms


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


def activation_stats(acts: np.ndarray, tail: Path, labels: np.ndarray, whole_logits: np.ndarray,
                     samples: int = CODEC_SAMPLES) -> dict:
    """Per encoding: mean bytes per image, encode/decode ms per image (codec_times), top-1, and top-1 agreement
    with the whole model."""
    out = {}
    for enc in codec.ACTIVATION_ENCODINGS:
        sizes, payloads, decoded = [], [], np.empty_like(acts)
        for i in range(len(acts)):  # keeping only the timed images' bodies: an FP32 activation may be 100s of KB
            p = codec.encode_activation(acts[i:i + 1], enc)
            decoded[i] = codec.decode_activation(p.body, p.headers)[0]
            sizes.append(len(p.body))
            payloads += [p][:int(i < samples)]
        logits = whole_logits if enc == "fp32" else run_batched(tail, decoded)
        if enc == "fp32" and not np.array_equal(run_batched(tail, decoded), whole_logits):
            raise EdgemapError(f"{tail.name}: head + tail with FP32 activations differ from the whole model")
        times = codec_times(lambda i, e=enc: codec.encode_activation(acts[i:i + 1], e),
                            lambda i: codec.decode_activation(payloads[i].body, payloads[i].headers), min(samples, len(acts)))
        out[enc] = {"bytes": float(np.mean(sizes)), "bytes_max": int(max(sizes)), **times,
                    **_accuracy(logits, labels, whole_logits)}
    return out


def codec_times(encode, decode, n: int, gap_s: float = CODEC_GAP_S) -> dict:  # noqa: ANN001 - callables of an index
    """Encode / decode ms of items 0..n-1, each call timed after an idle gap of gap_s, as inside a request."""
    t_enc, t_dec = [], []
    for i in range(n):
        time.sleep(gap_s)
        t0 = time.perf_counter()
        encode(i)
        t_enc.append(time.perf_counter() - t0)
        time.sleep(gap_s)
        t0 = time.perf_counter()
        decode(i)
        t_dec.append(time.perf_counter() - t0)
    return _codec_ms(t_enc, t_dec)


def _codec_ms(t_enc: list[float], t_dec: list[float]) -> dict:
    """Per-image encode/decode ms: the median, like every part latency, since a request pays the typical codec
    time; the mean (kept beside it) is inflated by load bursts on a shared host."""
    return {"encode_ms": float(np.median(t_enc) * 1e3), "decode_ms": float(np.median(t_dec) * 1e3),
            "encode_ms_mean": float(np.mean(t_enc) * 1e3), "decode_ms_mean": float(np.mean(t_dec) * 1e3)}


def _accuracy(logits: np.ndarray, labels: np.ndarray, reference: np.ndarray) -> dict:
    pred = logits.argmax(1)
    return {"top1": float((pred == labels).mean()), "agreement": float((pred == reference.argmax(1)).mean())}


def input_stats(src: SplitSource, images: np.ndarray, labels: np.ndarray, whole_logits: np.ndarray,
                qualities: tuple[int, ...], samples: int = CODEC_SAMPLES) -> list[dict]:
    """Sending the input instead: raw pixels, PNG, and JPEG/WebP at each quality, with the accuracy each leaves."""
    rows = []
    channels = images.shape[-1]
    for kind, q in [("raw", None), ("png", None)] + [(k, q) for k in ("jpeg", "webp") for q in qualities]:
        payloads = [codec.encode_image(im, kind, q or 75) for im in images]
        decoded = [codec.decode_image(p.body, p.headers, channels) for p in payloads]
        sizes = [len(p.body) for p in payloads]
        logits = (whole_logits if kind in ("raw", "png")
                  else run_batched(src.onnx_path, src.spec.apply(np.stack(decoded))))
        times = codec_times(lambda i, k=kind, qq=q: codec.encode_image(images[i], k, qq or 75),
                            lambda i: codec.decode_image(payloads[i].body, payloads[i].headers, channels),
                            min(samples, len(images)))
        rows.append({"encoding": kind, "quality": q, "bytes": float(np.mean(sizes)), "bytes_max": int(max(sizes)),
                     **times, **_accuracy(logits, labels, whole_logits)})
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
                  qualities: tuple[int, ...] = QUALITIES, threads: int = 0, codec_samples: int = CODEC_SAMPLES) -> dict:
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
                     "encodings": activation_stats(acts, tail, data.labels, whole_logits, codec_samples)})
    return {"model": src.name, "model_sha256": src.sha256, "onnx": str(src.onnx_path), "device": device, "server": server,
            "power": device_power(device), "preprocess_ms": preprocess_ms(src, data.images[0]), "num_classes": int(whole_logits.shape[1]),
            "data": {"source": data.source, "images": len(data), "exact_images": int(data.lossless.sum())},
            "whole": whole, "cuts": rows,
            "inputs": input_stats(src, data.images, data.labels, whole_logits, qualities, codec_samples),
            "evidence": machine_evidence(threads or None)}


def load_or_profile(src: SplitSource, data: ImageSet, device: str, server: str, work: Path,
                    qualities: tuple[int, ...] = QUALITIES, threads: int = 0, fresh: bool = False) -> dict:
    """profile_split, cached in `work` by model, devices, data and qualities (latencies measured on this host
    are re-measured only with `fresh`)."""
    import hashlib
    import json

    from edgemap.core.atomic import write_json

    key = hashlib.sha256(json.dumps([PROFILE_VERSION, src.sha256, src.spec.to_dict(), device, server, data.source, len(data),
                                     hashlib.sha256(data.images.tobytes()).hexdigest(),
                                     hashlib.sha256(data.labels.tobytes()).hexdigest(), list(qualities), threads]).encode())
    path = work / f"profile-{key.hexdigest()[:16]}.json"
    if path.is_file() and not fresh:
        return json.loads(path.read_text())
    result = profile_split(src, data, device, server, work, qualities, threads)
    write_json(path, result)
    return result
