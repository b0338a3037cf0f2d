"""Helpers shared by the compression benchmarks: data, accuracy on all / exact images, latency with spread, results."""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
SHARED_CIFAR = ROOT.parent / "shared" / "data" / "cifar10"


def cifar(split: str):  # noqa: ANN201 - ImageSet
    """Full CIFAR-10 split from $EDGEMAP_CIFAR10 (or the shared copy)."""
    from edgemap.data.cifar10 import load_cifar10

    return load_cifar10(split, Path(os.environ.get("EDGEMAP_CIFAR10", SHARED_CIFAR)))


def both(result) -> dict:  # noqa: ANN001 - EvalResult
    """Accuracy on the full test set and on its exact images."""
    return {"top1": round(result.top1, 2), "top1_exact": round(result.top1_exact, 2), "n": result.n, "n_exact": result.n_exact}


def latency_rounds(fns: dict[str, Callable[[], object]], rounds: int, runs: int, warmup: int = 30) -> dict:
    """Interleaved batch-1 latency repeated `rounds` times: per candidate the median p50 and its spread over rounds."""
    from edgemap.runtime.latency import measure_interleaved

    per_round = [measure_interleaved(fns, runs=runs, warmup=warmup) for _ in range(rounds)]
    out = {}
    for name in fns:
        p50s = [r[name]["p50_ms"] for r in per_round]
        out[name] = {"p50_ms_median": round(statistics.median(p50s), 4), "p50_ms_min": round(min(p50s), 4),
                     "p50_ms_max": round(max(p50s), 4), "p90_ms_median": round(statistics.median(r[name]["p90_ms"] for r in per_round), 4),
                     "rounds": rounds, "runs_per_round": runs}
    return {"candidates": out, "per_round_p50_ms": [{k: round(v["p50_ms"], 4) for k, v in r.items()} for r in per_round]}


def ratio(lat: dict, slow: str, fast: str) -> dict:
    """Speedup of `fast` over `slow`: median over rounds of the per-round ratio, with its min and max."""
    ratios = [r[slow] / r[fast] for r in lat["per_round_p50_ms"]]
    return {"median": round(statistics.median(ratios), 3), "min": round(min(ratios), 3), "max": round(max(ratios), 3)}


def ort_fn(path: Path, threads: int) -> Callable[[], object]:
    """A zero-argument batch-1 ONNX Runtime call."""
    import numpy as np

    from edgemap.runtime.onnxruntime_backend import OrtSession

    sess = OrtSession(path, threads=threads, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    return lambda: sess._run(x)


def torch_fn(model) -> Callable[[], object]:  # noqa: ANN001 - nn.Module
    """A zero-argument batch-1 PyTorch eager call (inference mode)."""
    import torch

    model = model.eval().to(memory_format=torch.contiguous_format)
    x = torch.randn(1, 3, 32, 32)

    def run() -> object:
        with torch.inference_mode():
            return model(x)

    return run


def checkpoint_id(path: Path) -> dict:
    """Which weights produced the figures: path, sha256 prefix, and the sidecar's test metrics."""
    import hashlib

    from edgemap.models.checkpoint import read_info

    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    return {"path": str(path), "sha256_16": digest, "sidecar_metrics": read_info(path).metrics}


def write_result_json(path: Path, record: dict) -> Path:
    """Write a benchmark's JSON (atomically) and record the same figures in the results store: the file is an export of
    the store, queryable with `edgemap runs list --command benchmark` (a store that cannot take it: one warning line)."""
    from edgemap.core.atomic import write_json
    from edgemap.results.importer import record_benchmark_file

    write_json(path, record)
    record_benchmark_file(path)
    return Path(path)


def write_results(name: str, record: dict, lines: list[str]) -> None:
    """benchmarks/results/NAME.json (everything) and NAME.md (the summary), and the run into the results store."""
    from edgemap.core.atomic import write_text

    write_result_json(RESULTS / f"{name}.json", record)
    write_text(RESULTS / f"{name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(json.dumps(record.get("claims", {}), indent=2))
