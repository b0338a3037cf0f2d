"""Quantization with accuracy control: keep the most sensitive layers in float until the drop is met.

As in NNCF's quantize_with_accuracy_control and Intel Neural Compressor's tuning loop: quantize
everything; if the accuracy drop is too large, rank the layers by how much the INT8 model's
output recovers when that one layer stays in float (its sensitivity), then put layers back to
float in that order until the drop is met, or report that it cannot be and write the best found.
Sensitivity is the mean squared logit error against the float model, a continuous measure that
does not tie on a small control set the way accuracy does.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edgemap.compress.measure import onnx_logits
from edgemap.compress.static_quantizer import StaticQuantizer, copy_file
from edgemap.data.dataset import ImageSet
from edgemap.data.transforms import Normalization
from edgemap.train.evaluate import accuracy_report


def _score(path: Path, data: ImageSet, norm: Normalization, ref: np.ndarray) -> tuple[float, float]:
    """(top-1 in percent, mean squared logit error against `ref`) of one candidate model."""
    logits = onnx_logits(path, data, norm)
    return accuracy_report(logits.argmax(1), data).top1, float(np.mean((logits - ref) ** 2))


def layer_sensitivity(q: StaticQuantizer, workdir: Path, data: ImageSet, norm: Normalization,
                      ref: np.ndarray) -> dict[str, float]:
    """Logit error of the INT8 model with each single quantizable layer kept in float (lower: more sensitive)."""
    out = {}
    for node in q.nodes:
        path = workdir / "sens.onnx"
        q.quantize(path, [node])
        out[node] = _score(path, data, norm, ref)[1]
    return out


def quantize_with_accuracy_control(q: StaticQuantizer, out: str | Path, data: ImageSet, norm: Normalization,
                                   max_drop: float) -> dict:
    """Write to `out` the INT8 model with the fewest float layers whose top-1 drop on `data` is <= max_drop
    (or the best one found); returns what was tried, the sensitivities and the layers kept in float."""
    ref = onnx_logits(q.pre, data, norm)
    fp32 = accuracy_report(ref.argmax(1), data).top1
    with tempfile.TemporaryDirectory(prefix="edgemap-aac-") as d:
        work = Path(d)
        excluded: list[str] = list(q.base_exclude)
        best = _try(q, work / "c0.onnx", excluded, data, norm, ref, fp32)
        steps, sens = [best], {}
        if best["drop"] > max_drop:
            sens = layer_sensitivity(q, work, data, norm, ref)
            order = [n for n in sorted(sens, key=sens.get) if n not in excluded]
            for i, node in enumerate(order[:-1]):  # keep at least one layer in INT8
                excluded.append(node)
                step = _try(q, work / f"c{i + 1}.onnx", excluded, data, norm, ref, fp32)
                steps.append(step)
                if step["drop"] < best["drop"]:
                    best = step
                if step["drop"] <= max_drop:
                    best = step
                    break
        copy_file(best["path"], out)
    clean = [{k: v for k, v in s.items() if k != "path"} for s in steps]
    return {"met": best["drop"] <= max_drop, "max_drop": max_drop, "fp32_top1": fp32, "best_top1": best["top1"],
            "best_drop": best["drop"], "excluded": best["excluded"], "control_set": f"{data.source} ({len(data)} images)",
            "sensitivity_mse": sens, "steps": clean}


def _try(q: StaticQuantizer, path: Path, excluded: list[str], data: ImageSet, norm: Normalization,
         ref: np.ndarray, fp32: float) -> dict:
    q.quantize(path, excluded)
    top1, mse = _score(path, data, norm, ref)
    return {"path": path, "excluded": list(excluded), "top1": top1, "drop": round(fp32 - top1, 4), "logit_mse": mse}
