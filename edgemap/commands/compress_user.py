"""`edgemap compress prune` on a user's model (.onnx, .pt2, entry point): the recipe pass `prune_user_model` that
`edgemap map --prune-ratios` runs, alone, with accuracy and latency before -> after like the other compress commands.

An edgemap checkpoint is pruned by `prune_channels` instead (it keeps its sidecar); the options that only that pass
has are refused here by name rather than ignored.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from edgemap.errors import EdgemapError


def is_checkpoint(model: str | Path) -> bool:
    """An edgemap checkpoint (pruned by prune_channels), as opposed to a user's model."""
    return str(model).lower().endswith(".safetensors")


def refuse_checkpoint_options(given: dict[str, bool]) -> None:
    """One line naming the options given (True) that only an edgemap checkpoint's pruning takes."""
    names = [name for name, was_given in given.items() if was_given]
    if names:
        raise EdgemapError(f"{', '.join(names)}: only for edgemap checkpoints (.safetensors); a user's model is pruned "
                           "per layer by ratio, its criterion and schedule chosen on a probe (--importance auto)")


def prune_user(model: Path, weights: Path | None, out: Path, settings: dict, data: Path | None,
               eval_data: Path | None, preprocess: str | None, latency_runs: int,
               class_names: tuple[str, ...] | None, val_data: Path | None = None):  # noqa: ANN201 - CompressionReport
    """Prune a user's model with the prune_user_model pass (`settings`: its fields) into the ONNX file `out`, then
    measure the original's and the pruned model's accuracy on --eval-data and their ONNX Runtime latency.
    `val_data` (--val-data): images the model was not trained on, which judge the fine-tuning's stop."""
    import dataclasses

    from edgemap.commands.compress_data import onnx_context
    from edgemap.compress.onnx_report import measure_onnx_pair
    from edgemap.models.sources.loaders import model_ref, source_artifact
    from edgemap.pipeline.sources import onnx_of
    from edgemap.pipeline.user_prune import PruneUserModel, prune_user_model_pass

    if out.suffix.lower() != ".onnx":
        raise EdgemapError(f"{out}: a pruned user model is written as ONNX; give --out NAME.onnx")
    cfg = PruneUserModel(**settings)  # validated before any data is read
    if data is None and cfg.finetune_epochs != 0:
        raise EdgemapError("fine-tuning after pruning needs training data: give --data (your images, with --preprocess; "
                           "--finetune-epochs 0 prunes without fine-tuning)")
    with tempfile.TemporaryDirectory(prefix="edgemap-prune-") as work:
        original = onnx_of(model, weights, work)  # the reference for accuracy and latency: the model as ONNX
        ctx = onnx_context(original, data, eval_data, preprocess, latency_runs, class_names, val_data)
        ctx = dataclasses.replace(ctx, source=source_artifact(model_ref(model, weights, ctx.input_shape)))
        report = prune_user_model_pass(cfg, model if Path(model).is_file() else original, out, ctx)
        measure_onnx_pair(report, original, out, ctx)
    return report
