"""Where edgemap stands on the user's own model: its candidates and the peers, scored and timed alike.

Every model (FP32, edgemap's candidates, the peers) is scored on the same preprocessed images and
timed by runtime/isolated.py (one fresh process per model, thread count and round). The best peer is
the fastest peer within `max_drop` points of FP32 (else the most accurate one); each edgemap
candidate gets a line against it that says 'faster' only when the spreads do not overlap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemap.errors import EdgemapError
from edgemap.peers.build import Peer, build_peers
from edgemap.runtime.isolated import IsolatedResult, compare, same_ranking, speedup_line, time_in_bursts, time_isolated


def accuracy_of(path: str | Path, backend: str | None, x: np.ndarray, y: np.ndarray, batch: int = 256) -> float:
    """Top-1 (percent) of a model file on preprocessed inputs `x` with labels `y` (fixed batches zero-padded)."""
    from edgemap.runtime.registry import load_session

    if len(x) != len(y) or len(x) == 0:
        raise EdgemapError(f"evaluation data: {len(x)} inputs and {len(y)} labels")
    with load_session(backend, path, 0) as session:
        fixed = session.inputs()[0].shape[0]
        step = fixed or batch
        preds = []
        for start in range(0, len(x), step):
            xb = x[start:start + step]
            n = len(xb)
            if fixed and n < fixed:
                xb = np.concatenate([xb, np.zeros((fixed - n, *xb.shape[1:]), xb.dtype)])
            preds.append(np.asarray(session.run(np.ascontiguousarray(xb), check_finite=False))[:n].argmax(1))
    return float((np.concatenate(preds) == y).mean() * 100)


@dataclass(frozen=True)
class Entry:
    """One compared model: what it is, where it is, how accurate and how large."""

    name: str
    kind: str  # "fp32", "edgemap" or "peer"
    path: Path
    backend: str
    accuracy: float
    file_bytes: int
    recipe: str = ""


def compare_with_peers(fp32_onnx: str | Path, calib: np.ndarray, eval_x: np.ndarray, eval_y: np.ndarray,
                       out_dir: str | Path, candidates: dict[str, tuple[str | Path, str]] | None = None,
                       peers: tuple[str, ...] | None = None, max_drop: float = 0.5, threads: tuple[int, ...] = (1, 2),
                       rounds: int = 5, runs: int = 100, check_bursts: bool = True) -> dict:
    """Build the peers, score every model, time them all in isolation; returns a JSON-ready report.
    `candidates` maps a name to (model file, backend) for edgemap's own results. check_bursts: also time
    them in one process in alternating bursts (1 thread) and say whether that ranks them alike."""
    built = build_peers(fp32_onnx, calib, out_dir, peers)
    entries = [_entry("fp32", "fp32", Path(fp32_onnx), "onnxruntime", eval_x, eval_y)]
    entries += [_entry(n, "edgemap", Path(p), b, eval_x, eval_y) for n, (p, b) in (candidates or {}).items()]
    entries += [_entry(p.name, "peer", p.path, p.backend, eval_x, eval_y, p.recipe) for p in built.values()]
    timing = time_isolated({e.name: e.path for e in entries}, threads, rounds, runs,
                           backends={e.name: e.backend for e in entries})
    report = summarise(entries, timing, max_drop, list(built.values()))
    if check_bursts:
        bursts = time_in_bursts({e.name: e.path for e in entries}, 1, rounds, runs,
                                backends={e.name: e.backend for e in entries})
        report["bursts"] = {"same_ranking": same_ranking(timing, bursts), "timing": bursts.to_dict()}
    return report


def _entry(name: str, kind: str, path: Path, backend: str, x: np.ndarray, y: np.ndarray, recipe: str = "") -> Entry:
    size = path.stat().st_size + (path.with_suffix(".bin").stat().st_size if path.suffix == ".xml" else 0)
    return Entry(name, kind, path, backend, accuracy_of(path, backend, x, y), size, recipe)


def best_peer(entries: list[Entry], timing: IsolatedResult, max_drop: float) -> Entry | None:
    """The fastest peer within max_drop of FP32, else the most accurate peer (None without peers)."""
    fp32 = next(e for e in entries if e.kind == "fp32")
    peers = [e for e in entries if e.kind == "peer"]
    within = [e for e in peers if fp32.accuracy - e.accuracy <= max_drop]
    if within:
        return min(within, key=lambda e: timing.best(e.name).median_ms)
    return max(peers, key=lambda e: e.accuracy) if peers else None


def summarise(entries: list[Entry], timing: IsolatedResult, max_drop: float, built: list[Peer] | None = None) -> dict:
    """Rows (accuracy, drop, size, best-thread median and spread) and one verdict line per edgemap candidate."""
    fp32 = next(e for e in entries if e.kind == "fp32")
    ref = best_peer(entries, timing, max_drop)
    rows = []
    for e in entries:
        t = timing.best(e.name)
        row = {"name": e.name, "kind": e.kind, "backend": e.backend, "path": str(e.path), "accuracy": round(e.accuracy, 2),
               "drop": round(fp32.accuracy - e.accuracy, 2), "file_bytes": e.file_bytes, "recipe": e.recipe,
               "threads": t.threads, "median_ms": round(t.median_ms, 4),
               "spread_ms": [round(v, 4) for v in t.spread_ms]}
        if ref is not None and e is not ref:
            rt = timing.best(ref.name)
            row["vs_best_peer"] = {"speedup": round(rt.median_ms / t.median_ms, 3), "verdict": compare(t, rt),
                                   "line": speedup_line(t, rt)}
        rows.append(row)
    return {"rows": rows, "best_peer": ref.name if ref else None, "max_drop": max_drop,
            "peers": [p.to_dict() for p in built or []], "timing": timing.to_dict()}


def markdown_table(report: dict) -> str:
    """The report's rows as a Markdown table, then the verdict lines of edgemap's candidates."""
    lines = ["| model | kind | backend | top-1 % | drop | file KB | threads | median ms (range) | vs best peer |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        vs = r.get("vs_best_peer")
        vs_text = f"x{vs['speedup']:.2f} ({vs['verdict']})" if vs else "(best peer)" if r["kind"] == "peer" else ""
        lo, hi = r["spread_ms"]
        lines.append(f"| {r['name']} | {r['kind']} | {r['backend']} | {r['accuracy']:.2f} | {r['drop']:+.2f} | "
                     f"{r['file_bytes'] / 1024:.0f} | {r['threads']} | {r['median_ms']:.3f} ({lo:.3f}-{hi:.3f}) | {vs_text} |")
    lines += [""] + [f"- {r['vs_best_peer']['line']}" for r in report["rows"]
                     if r["kind"] == "edgemap" and "vs_best_peer" in r]
    if "bursts" in report:
        same = "the same ranking" if report["bursts"]["same_ranking"] else "a DIFFERENT ranking (see the JSON)"
        lines.append(f"- the same files timed in one process, in alternating bursts at 1 thread, give {same}")
    return "\n".join(lines)
