"""`edgemap map --compare-peers`: the INT8 a user would otherwise make, built from the same FP32 ONNX file,
scored on the same evaluation images and timed in the same isolated run as the map's own finalists.

Peers (edgemap.peers.build): ONNX Runtime static INT8 with Olive's defaults, NNCF INT8 on ONNX Runtime, NNCF INT8
on OpenVINO. A peer that cannot be built here (a tool missing, a model it refuses) is reported with its reason and
the map goes on. The best peer is the fastest within the map's accuracy bound, else the most accurate.
"""

from __future__ import annotations

from pathlib import Path

from edgemap.errors import EdgemapError


def build_map_peers(job, calib_samples: int, out_dir: Path) -> tuple[dict[str, tuple[str, str]], list[dict]]:  # noqa: ANN001
    """({'peer:<name>': (backend, file)} to time, [per peer: how it was made, top-1, drop, size, or its error])."""
    from edgemap.peers.build import BUILDERS, build_peers
    from edgemap.peers.compare import accuracy_of
    from edgemap.search.evaluate import eval_arrays

    calib = _calibration(job, calib_samples)
    x, y, _ = eval_arrays(job.ctx.eval_npz)
    rows, info = {}, []
    for name in BUILDERS:
        try:
            peer = build_peers(job.ctx.fp32_onnx, calib, Path(out_dir) / "peers", (name,))[name]
            acc = accuracy_of(peer.path, peer.backend, x, y)
        except EdgemapError as exc:
            info.append({"name": name, "error": str(exc)})
            continue
        size = peer.path.stat().st_size + (peer.path.with_suffix(".bin").stat().st_size if peer.path.suffix == ".xml" else 0)
        info.append({**peer.to_dict(), "accuracy": round(acc, 2),
                     "accuracy_drop": round(job.ctx.baseline_accuracy - acc, 2), "size_bytes": size})
        rows[f"peer:{name}"] = (peer.backend, str(peer.path))
    return rows, info


def _calibration(job, n: int):  # noqa: ANN001, ANN202 - Job -> float32 array
    """The search's own calibration images (training data, or the held-out eval share), preprocessed as the model takes."""
    from edgemap.data.compat import sample
    from edgemap.pipeline.context import data_section, load_data

    data = load_data(*data_section(job.ctx.recipe))
    return job.preprocess.apply(sample(data.calib_set, n).images).astype("float32")


def summarise_peers(info: list[dict], summary: dict, max_drop: float | None) -> dict:
    """Each peer with its timing from the same run; the best peer and the chosen mapping's line against it."""
    from edgemap.search.robust import verdict_line

    cmp = summary.get("comparison") or {}
    for p in info:
        if f"peer:{p['name']}" in cmp:
            p["timing"] = cmp[f"peer:{p['name']}"]
    timed = [p for p in info if "timing" in p]
    within = [p for p in timed if max_drop is None or p["accuracy_drop"] <= max_drop]
    best = (min(within, key=lambda p: p["timing"]["p50_ms"]) if within
            else max(timed, key=lambda p: p["accuracy"]) if timed else None)
    out = {"peers": info, "best_peer": best["name"] if best else None}
    if best:
        out["chosen_vs_best_peer"] = verdict_line(best["timing"], best["name"])
        out["accuracy_vs_best_peer"] = round(summary["chosen"]["accuracy"] - best["accuracy"], 2)
    return out
