"""Recipes: an ordered list of passes run on one model, each output feeding the next.

```yaml
model: {path: runs/resnet9s.safetensors}   # a checkpoint or an .onnx file; {shipped: resnet9s} for the default
passes:
  - {type: prune_channels, ratio: 0.5, finetune_epochs: 3}
  - {type: export_onnx, opset: 18}
  - {type: quantize_static, calibration: entropy, samples: 512}
```

Every pass config is built (and so validated) and the chain of formats checked before anything
runs, so a bad recipe fails in a second, not after an hour of fine-tuning.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from edgemap.compress.context import PassContext
from edgemap.compress.report import CompressionReport, file_size, timed
from edgemap.core import passes
from edgemap.core.atomic import write_json
from edgemap.errors import EdgemapError

SUFFIX = {"checkpoint": ".safetensors", "onnx": ".onnx"}


@passes.register_pass("export_onnx", consumes="checkpoint", produces="onnx", needs_data=False)
@dataclass(frozen=True)
class ExportOnnx:
    """Checkpoint -> ONNX (edgemap.convert.onnx_export), so a recipe can go on with ONNX passes."""

    opset: int = 18

    def __post_init__(self) -> None:
        if not 13 <= self.opset <= 23:
            raise EdgemapError(f"export_onnx: opset must lie in 13..23, got {self.opset}")


@passes.pass_function(ExportOnnx)
def export_onnx_pass(cfg: ExportOnnx, source: str | Path, out: str | Path, ctx: PassContext) -> CompressionReport:
    """Export a checkpoint to ONNX (no accuracy change expected; measured when eval data is given)."""
    from edgemap.compress.measure import onnx_accuracy, torch_accuracy
    from edgemap.convert.onnx_export import export_onnx
    from edgemap.models.checkpoint import load_checkpoint

    model, info = load_checkpoint(source)
    report = CompressionReport("export_onnx", passes.config_to_dict(cfg))
    with timed(report):
        export_onnx(model, out, info.input_shape, opset=cfg.opset)
    report.output, report.file_bytes = str(out), (file_size(source), file_size(out))
    if ctx.eval_set is not None:
        report.accuracy = {"before": torch_accuracy(model, ctx.eval_set, info.normalization),
                           "after": onnx_accuracy(out, ctx.eval_set, info.normalization)}
    return report


def model_format(path: str | Path) -> str:
    """"onnx" or "checkpoint" from a file name."""
    suffix = Path(path).suffix
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".safetensors":
        return "checkpoint"
    raise EdgemapError(f"{path}: expected a .safetensors checkpoint or an .onnx model")


def source_of(recipe: dict) -> Path:
    """The model file a recipe starts from."""
    from edgemap.models.shipped import shipped_checkpoint

    model = recipe.get("model")
    if isinstance(model, dict) and "path" in model:
        return Path(model["path"])
    if isinstance(model, dict) and "shipped" in model:
        return shipped_checkpoint(str(model["shipped"]))
    raise EdgemapError(f"recipe: 'model' must be {{path: FILE}} or {{shipped: NAME}}, got {model!r}")


def plan(recipe: dict) -> tuple[Path, list]:
    """Validate a recipe without running it: the source, and the pass configs whose formats chain."""
    if not isinstance(recipe, dict) or not isinstance(recipe.get("passes"), list) or not recipe["passes"]:
        raise EdgemapError("recipe: needs a non-empty 'passes' list")
    source = source_of(recipe)
    fmt = model_format(source)
    configs = []
    for i, entry in enumerate(recipe["passes"]):
        cfg = passes.config_from_dict(entry)
        spec = passes.spec(type(cfg).type_name)
        if spec.consumes != fmt:
            raise EdgemapError(f"recipe: pass {i + 1} ({spec.type_name}) takes a {spec.consumes}, but gets a {fmt}")
        fmt = spec.produces
        configs.append(cfg)
    return source, configs


def run_recipe(recipe: dict, out_dir: str | Path, ctx: PassContext) -> list[CompressionReport]:
    """Run every pass in order, writing out_dir/NN_type.ext and out_dir/report.json; returns the reports."""
    source, configs = plan(recipe)
    out_dir = Path(out_dir)
    if source.suffix == ".safetensors":
        from edgemap.models.checkpoint import read_info

        info = read_info(source)
        ctx = dataclasses.replace(ctx, norm=info.normalization, input_shape=info.input_shape)
    reports, current = [], source
    for i, cfg in enumerate(configs, 1):
        spec = passes.spec(type(cfg).type_name)
        out = out_dir / f"{i:02d}_{spec.type_name}{SUFFIX[spec.produces]}"
        step_ctx = dataclasses.replace(ctx, run_dir=out_dir / "state" / f"{i:02d}")
        reports.append(spec.run(cfg, current, out, step_ctx))  # type: ignore[misc]
        current = out
        write_json(out_dir / "report.json", {"recipe": recipe, "passes": [r.to_dict() for r in reports]})
    return reports


def load_recipe(path: str | Path) -> dict:
    """Read a recipe from YAML or JSON."""
    from edgemap.core.files import read_yaml

    data = read_yaml(path, "recipe")
    if not isinstance(data, dict):
        raise EdgemapError(f"{path}: a recipe is a mapping with 'model' and 'passes'")
    return data
