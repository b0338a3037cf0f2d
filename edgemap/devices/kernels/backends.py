"""Whole-call latency predictors for OpenVINO and LiteRT on this host's CPU (batch 1, FP32 and INT8).

Neither runtime gives per-kernel times this code can use as ONNX Runtime's profiler does (LiteRT's
Python interpreter has no op profiler; OpenVINO's PERF_COUNT, get_profiling_info(), reports the last
request only, and its layer times summed to 0.6-2.4x the call in a probe of single runs here, so no
kernel-level fit was built on it), so the model is a line over the graph's work per kernel class:

    call = c0 + sum over classes k (a_k * kernels_k + b_k * MACs_k + c_k * bytes_k + d_k * ORT_k)

per (precision, threads), all coefficients >= 0 (INT8 lines without d_k of grouped/depthwise convs: IGNORED),
fitted for the least absolute relative error on sampled one-to-four-node graphs (the kernel sampler's) measured
in that runtime. The kernels and their sizes are ONNX Runtime's optimised graph of the ONNX model (what an estimate is given: the
search estimates a candidate from its ONNX form), and ORT_k is the ONNX Runtime kernel-level
prediction of the class's kernels, which carries what a line in MACs cannot (depthwise and small-
channel inefficiency). The records (per-graph features and measured times, not fitted numbers)
are stored beside the profile as NAME.backends.json.gz, per instruction set.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from edgemap.core.atomic import atomic_path
from edgemap.errors import EdgemapError

BACKENDS = ("openvino", "litert")
CLASSES = ("conv_dense", "conv_group", "fc", "quant", "nonlinear", "other")
# elementwise arithmetic and averaging: fused or cheap in one runtime, separate (and in LiteRT INT8, slow) in another
NONLINEAR = {"Add", "Mul", "Sigmoid", "HardSigmoid", "HardSwish", "QuickGelu", "Tanh", "Softmax", "AveragePool",
             "GlobalAveragePool", "QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearAveragePool", "QLinearGlobalAveragePool"}
PARTS = ("kernels", "macs", "bytes", "ort_s")
COLUMNS = ("const",) + tuple(f"{c}.{p}" for c in CLASSES for p in PARTS)
SUFFIX = ".backends.json.gz"
FORMAT = 2  # 1 stored per-class totals; 2 stores each graph's kernels
MIN_GRAPHS = 8  # fewer measured graphs for a (precision, threads): no predictor for it


# oneDNN (inside OpenVINO's CPU plugin) honours ONEDNN_MAX_CPU_ISA: capped, it runs the kernels of that
# instruction set (checked here: an INT8 conv compiled as brgconv_avx512_I8 becomes jit_avx2_I8 under AVX2),
# so OpenVINO's records measured under a cap are stored under the tag of the capped instruction set.
ONEDNN_CAPS = {"AVX2": "avx2", "AVX2_VNNI": "avx_vnni", "AVX512_CORE": "avx512f", "AVX512_CORE_VNNI": "avx512_vnni"}


def backend_isa_tag(backend: str) -> str:
    """The instruction-set tag `backend`'s kernels run with here: this CPU's (store.isa_tag), or for OpenVINO the
    one ONEDNN_MAX_CPU_ISA caps it to (an unknown cap is refused: its kernels could not be named)."""
    import os

    from edgemap.devices.kernels.store import isa_tag

    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if backend != "openvino" or not cap or cap in ("ALL", "DEFAULT"):
        return isa_tag()
    if cap not in ONEDNN_CAPS:
        raise EdgemapError(f"ONEDNN_MAX_CPU_ISA={cap} is not one of {', '.join(ONEDNN_CAPS)}: "
                           "OpenVINO records cannot be filed under an instruction set")
    return ONEDNN_CAPS[cap]


def kernel_class(key: str, op: str) -> str:
    """Coarse class of an ONNX Runtime kernel (its features.shape_class key and op)."""
    if ":dense:" in key:
        return "conv_dense"
    if ":dw:" in key or ":grouped:" in key:
        return "conv_group"
    base = op.split(".")[-1]
    if base in ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"):
        return "quant"
    if any(o in base for o in ("Gemm", "MatMul")):
        return "fc"
    return "nonlinear" if base in NONLINEAR else "other"


def kernel_items(rows: list) -> list[list]:
    """[key, op, MACs, bytes moved, predicted ONNX Runtime seconds] of each kernels.predict.KernelRow: what a record
    stores per sampled graph (the classes are applied when fitting, so they can change without re-measuring)."""
    return [[r.key, r.op, int(r.macs), int(r.bytes_moved), float(r.predicted_s)] for r in rows]


def graph_features(items: list[list]) -> dict[str, float]:
    """Per-class totals of a model's kernel_items as {column: value}."""
    f = dict.fromkeys(COLUMNS, 0.0)
    f["const"] = 1.0
    for key, op, macs, moved, ort_s in items:
        c = kernel_class(key, op)
        f[f"{c}.kernels"] += 1.0
        f[f"{c}.macs"] += float(macs)
        f[f"{c}.bytes"] += float(moved)
        f[f"{c}.ort_s"] += float(ort_s)
    return f


# Columns an INT8 line does without: ONNX Runtime's INT8 depthwise/grouped kernels are slow, OpenVINO's and XNNPACK's
# are not, so ORT's time gives the class the wrong shape. Left out, the held-out median error on 40 unseen networks
# fell from 26.0/15.5 % to 20.2/9.9 % (OpenVINO INT8, 1/2 threads) and from 13.3/23.2 % to 8.1/21.2 % (LiteRT INT8),
# FP32 unchanged (benchmarks/estimator_backend_attempts.py, results/estimator_backend_attempts_*.md).
IGNORED = {"int8": ("conv_group.ort_s",)}


def _matrix(feats: list[dict], prec: str = "fp32") -> np.ndarray:
    skip = IGNORED.get(prec, ())
    return np.array([[0.0 if c in skip else f.get(c, 0.0) for c in COLUMNS] for f in feats])


def fit_line(x: np.ndarray, y: np.ndarray, rounds: int = 20) -> np.ndarray:
    """Non-negative coefficients minimising sum |x @ coef / y - 1| (reweighted non-negative least
    squares on scaled columns): a tail of slow calls (the other core busy) does not pull the line."""
    from scipy.optimize import nnls

    scale = np.maximum(np.abs(x).max(axis=0), 1e-12)
    a = (x / scale) / y[:, None]
    w = np.ones(len(y))
    coef = np.zeros(x.shape[1])
    for _ in range(rounds):
        coef, _ = nnls(a * w[:, None], w)
        w = 1.0 / np.sqrt(np.maximum(np.abs(a @ coef - 1.0), 1e-3))
    return coef / scale


class BackendPredictor:
    """One runtime's whole-call predictor: a fitted line per (precision, threads) measured."""

    def __init__(self, backend: str, graphs: list[dict]) -> None:
        self.backend = backend
        self.coefs: dict[tuple[str, int], np.ndarray] = {}
        self.counts: dict[tuple[str, int], int] = {}
        by: dict[tuple[str, int], list[tuple[dict, float]]] = {}
        for g in graphs:
            for t, s in g["times"].items():
                by.setdefault((g["prec"], int(t)), []).append((graph_features(g["kernels"][str(t)]), s))
        for key, pairs in by.items():
            if len(pairs) >= MIN_GRAPHS:
                self.coefs[key] = fit_line(_matrix([f for f, _ in pairs], key[0]), np.array([s for _, s in pairs]))
                self.counts[key] = len(pairs)

    def threads_for(self, prec: str, threads: int) -> int | None:
        """The measured thread count closest to `threads` for `prec` (the lower on a tie), or None."""
        known = sorted(t for p, t in self.coefs if p == prec)
        return min(known, key=lambda k: (abs(k - threads), k)) if known else None

    def predict(self, feats: dict[str, float], prec: str, threads: int) -> float:
        """Seconds of one call; `threads` must be one threads_for returned."""
        coef = self.coefs[(prec, threads)]
        return float(max(_matrix([feats], prec)[0] @ coef, 0.0))


def backends_path(profile_path: str | Path) -> Path:
    """Where the backend records of the profile at `profile_path` live (beside it)."""
    p = Path(profile_path)
    return p.with_name(p.stem + SUFFIX)


def read_backend_records(path: Path) -> dict:
    """The file's {isa tag: {backend: record}} (empty when the file does not exist)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(gzip.decompress(path.read_bytes()))
    except (OSError, ValueError) as exc:
        raise EdgemapError(f"{path}: not a backend-record file ({exc})") from None
    if data.get("format") != FORMAT:
        raise EdgemapError(f"{path}: backend-record format {data.get('format')!r}, this edgemap reads {FORMAT}; "
                           "re-run edgemap devices calibrate-host --backend ...")
    return data["by_isa"]


def write_backend_record(path: Path, tag: str, record: dict) -> Path:
    """Store `record` under (tag, its backend), keeping every other record (atomic write)."""
    records = read_backend_records(path)
    records.setdefault(tag, {})[record["backend"]] = record
    body = gzip.compress(json.dumps({"format": FORMAT, "by_isa": records}, separators=(",", ":")).encode(), mtime=0)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(body)
    _load.cache_clear()
    return path


def load_backend_predictor(path: Path, backend: str, tag: str):  # noqa: ANN201 - (BackendPredictor, record) or None
    """The predictor fitted on the stored record of `backend` for instruction set `tag`, or None."""
    if not path.is_file():
        return None
    return _load(str(path), path.stat().st_mtime_ns, backend, tag)


@lru_cache(maxsize=8)
def _load(path: str, mtime: int, backend: str, tag: str):  # noqa: ANN202, ARG001 - mtime keys the cache
    rec = read_backend_records(Path(path)).get(tag, {}).get(backend)
    if rec is None:
        return None
    return BackendPredictor(backend, rec["graphs"]), rec
