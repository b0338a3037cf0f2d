"""Recipes: a model source and an ordered list of registered passes, each output feeding the next.

```yaml
schema: 2
model: {path: runs/resnet9s.safetensors}   # .safetensors, .onnx, .pt2; {entry_point: ..., weights: ...}; {shipped: NAME}
passes:
  - {type: prune_channels, ratio: 0.5, finetune_epochs: 3}
  - {type: export_onnx, opset: 18}
  - {type: quantize_static, calibration: entropy, samples: 512}
  - {type: convert_openvino, precision: int8}
```

Every pass config is built (and so validated) and the chain of formats checked before anything
runs. With a cache folder, each output is kept under the hash of (parent sha256, full pass config,
data when the pass reads data), so a search and its replay, or two candidates with a common
prefix, build each file once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import edgemap.pipeline.loaded  # noqa: F401 - registers every pass and source
from edgemap.compress.context import PassContext
from edgemap.compress.report import CompressionReport
from edgemap.core import passes
from edgemap.core.artifact import SUFFIX, Artifact, cache_key
from edgemap.core.atomic import write_json
from edgemap.data.transforms import Normalization
from edgemap.errors import EdgemapError

SCHEMA_VERSION = 2  # 1: recipes before the schema field (a trailing {type: convert} step); 2: every step a pass
FIELDS = ("schema", "model", "passes", "data", "preprocess", "device", "runtime", "constraints", "objective",
          "chosen", "expected", "search")


@dataclass
class Built:
    """What running a recipe gave: the final artifact (its lineage holds every step) and each pass's report."""

    artifact: Artifact
    reports: list[CompressionReport] = field(default_factory=list)
    cached: list[bool] = field(default_factory=list)


def check_recipe(recipe: object, where: str = "recipe") -> dict:
    """Schema version and top-level fields, before anything is loaded."""
    if not isinstance(recipe, dict):
        raise EdgemapError(f"{where}: a recipe is a mapping with 'model' and 'passes'")
    schema = recipe.get("schema", 1)
    if not isinstance(schema, int) or schema < 1:
        raise EdgemapError(f"{where}: schema must be a positive integer, got {schema!r}")
    if schema > SCHEMA_VERSION:
        raise EdgemapError(f"{where}: written for recipe schema {schema}; this edgemap reads up to {SCHEMA_VERSION}: upgrade edgemap")
    unknown = sorted(set(recipe) - set(FIELDS))
    if unknown:
        raise EdgemapError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")
    if not isinstance(recipe.get("passes"), list):
        raise EdgemapError(f"{where}: needs a 'passes' list")
    if any(isinstance(p, dict) and p.get("type") == "convert" for p in recipe["passes"]):
        raise EdgemapError(f"{where}: the {{type: convert}} step of schema-1 recipes is gone; name the conversion pass "
                           f"(export_onnx, convert_openvino, convert_litert) and run `edgemap map` again")
    return recipe


def plan(recipe: dict) -> tuple[Artifact, list]:
    """Validate a recipe without running a pass: the source artifact, and the pass configs whose formats chain."""
    check_recipe(recipe)
    source = passes.source_for(recipe.get("model")).load(recipe["model"])
    fmt, configs = source.format, []
    for i, entry in enumerate(recipe["passes"]):
        cfg = passes.config_from_dict(entry)
        spec = passes.spec(type(cfg).type_name)
        if fmt not in spec.consumes:
            raise EdgemapError(f"recipe: pass {i + 1} ({spec.type_name}) takes {' or '.join(spec.consumes)}, but gets {fmt}")
        fmt = spec.produces
        configs.append(cfg)
    return source, configs


def run_recipe(recipe: dict, out_dir: str | Path, ctx: PassContext, cache_dir: str | Path | None = None) -> list[CompressionReport]:
    """Run every pass in order; returns the reports (see `build` for the artifacts)."""
    return build(recipe, out_dir, ctx, cache_dir).reports


def build(recipe: dict, out_dir: str | Path, ctx: PassContext, cache_dir: str | Path | None = None) -> Built:
    """Run the recipe; outputs go to out_dir/NN_type.ext, or to the cache (reused when present).
    out_dir/report.json records the recipe, every report and every artifact."""
    source, configs = plan(recipe)
    out_dir = Path(out_dir)
    ctx = _with_source_feeding(ctx, source)
    built = Built(source)
    for i, cfg in enumerate(configs, 1):
        report, was_cached = _run_step(cfg, i, built.artifact, out_dir, ctx, cache_dir)
        built.reports.append(report)
        built.cached.append(was_cached)
        spec = passes.spec(type(cfg).type_name)
        built.artifact = Artifact(Path(report.output), spec.produces, spec.output_precision(cfg, built.artifact.precision),
                                  built.artifact.input_shape, passes.config_to_dict(cfg), built.artifact)
    write_json(out_dir / "report.json", {"recipe": recipe, "passes": [r.to_dict() for r in built.reports],
                                         "artifacts": [a.to_dict() for a in built.artifact.lineage()]})
    return built


def _with_source_feeding(ctx: PassContext, source: Artifact) -> PassContext:
    """A checkpoint says how images feed it (its sidecar); other models are fed as the caller's ctx.norm says."""
    if source.format == "checkpoint" and isinstance(ctx.norm, Normalization):
        from edgemap.models.checkpoint import read_info

        info = read_info(source.path)
        return dataclasses.replace(ctx, norm=info.normalization, input_shape=info.input_shape)
    return dataclasses.replace(ctx, input_shape=tuple(source.input_shape))


def _run_step(cfg: object, i: int, parent: Artifact, out_dir: Path, ctx: PassContext,
              cache_dir: str | Path | None) -> tuple[CompressionReport, bool]:
    """One pass: from the cache when its output is there, else run and (with a cache) record it."""
    spec = passes.spec(type(cfg).type_name)
    config = passes.config_to_dict(cfg)
    if cache_dir is None:
        out = out_dir / f"{i:02d}_{spec.type_name}{SUFFIX[spec.produces]}"
        step_ctx = dataclasses.replace(ctx, source=parent, run_dir=out_dir / "state" / f"{i:02d}")
        report = spec.run(cfg, parent.path, out, step_ctx)  # type: ignore[misc]
        report.output = str(out)
        return report, False
    key = cache_key(parent.sha256, config, ctx.data_key if spec.needs else "")
    folder = Path(cache_dir) / key
    out, meta = folder / f"{spec.type_name}{SUFFIX[spec.produces]}", folder / "made.json"
    if meta.is_file() and out.is_file():
        from edgemap.core.files import read_yaml

        saved = read_yaml(meta, "cached pass record")  # JSON is YAML
        report = CompressionReport(**{**saved["report"], "params": tuple(saved["report"]["params"]),
                                      "macs": tuple(saved["report"]["macs"]),
                                      "file_bytes": tuple(saved["report"]["file_bytes"])})
        report.output = str(out)  # where the cache is now (it may have moved, or come from another machine)
        return report, True
    step_ctx = dataclasses.replace(ctx, source=parent, run_dir=folder / "state")
    report = spec.run(cfg, parent.path, out, step_ctx)  # type: ignore[misc]
    report.output = str(out)
    write_json(meta, {"parent": parent.sha256, "config": config, "report": report.to_dict()})
    return report, False


def load_recipe(path: str | Path) -> dict:
    """Read a recipe from YAML or JSON (a missing file, bad YAML, a newer schema: one line)."""
    from edgemap.core.files import read_yaml

    return check_recipe(read_yaml(path, "recipe"), str(path))
