"""Any model source as the ONNX graph a command reads (the estimators, the operator checks): the source loaders
and the export_onnx pass, so every command that takes a model takes what the registry knows."""

from __future__ import annotations

from pathlib import Path

from edgemap.errors import EdgemapError


def onnx_of(model: str | Path, weights: str | Path | None, work_dir: str | Path,
            input_shape: tuple[int, ...] | None = None) -> Path:
    """`model` itself when it is an .onnx file; else its FP32 ONNX export (parity-gated) written under work_dir."""
    from edgemap.compress.context import PassContext
    from edgemap.models.sources.loaders import model_ref
    from edgemap.pipeline.recipe import build

    if str(model).lower().endswith(".onnx") and weights is None:
        return Path(model)
    if str(model).lower().endswith((".xml", ".tflite")):
        raise EdgemapError(f"{model}: give the ONNX model (or its torch source) this {Path(model).suffix} was made from")
    ref = model_ref(model, weights, input_shape)  # input_shape: an entry point that does not state its own
    built = build({"model": ref, "passes": [{"type": "export_onnx"}]}, Path(work_dir), PassContext(latency_runs=0))
    return Path(built.artifact.path)
