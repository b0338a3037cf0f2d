"""`edgemap run recipe.yaml`: rebuild a mapping from its recipe with the runner the search used, measure it,
check it against what the recipe recorded, and pack and verify its bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgemap.errors import EdgemapError


def _feeding(recipe: dict, source):  # noqa: ANN001, ANN202 - PreprocessSpec for the evaluation and the bundle
    from edgemap.data.preprocess import PreprocessSpec
    from edgemap.pipeline.context import preprocess_of

    spec = preprocess_of(recipe)
    if spec is not None:
        return spec
    if source.format != "checkpoint":
        raise EdgemapError("recipe: a user model's recipe needs a 'preprocess' section (how images feed the model)")
    from edgemap.models.checkpoint import read_info

    info = read_info(source.path)
    return PreprocessSpec.from_normalization(info.normalization)


def _runtime(recipe: dict, fmt: str) -> dict:
    """The recipe's runtime, else the backend that loads the final format."""
    from edgemap.runtime.registry import CAPABILITIES

    runtime = dict(recipe.get("runtime") or {})
    if not runtime.get("backend"):
        runtime["backend"] = next(b for b, c in CAPABILITIES.items() if c.format == fmt)
    return {"backend": runtime["backend"], "threads": int(runtime.get("threads", 0))}


def run_recipe_file(path: str | Path, out_dir: str | Path, cache_dir: str | Path | None = None) -> dict:
    """Run the recipe's passes (cache: out_dir/cache unless given), evaluate, compare with the recorded figures,
    write out_dir/bundle and check its self-test on a fresh load."""
    from edgemap.deploy.bundle import pack
    from edgemap.deploy.edge import EdgeModel
    from edgemap.pipeline.context import recipe_context
    from edgemap.pipeline.recipe import build, load_recipe
    from edgemap.runtime.registry import load_session
    from edgemap.search.evaluate import accuracy

    recipe = load_recipe(path)
    out_dir = Path(out_dir)
    ctx, data = recipe_context(recipe)
    built = build(recipe, out_dir / "passes", ctx, cache_dir or out_dir / "cache")
    spec = _feeding(recipe, built.artifact.lineage()[0])
    runtime = _runtime(recipe, built.artifact.format)
    model = Path(built.artifact.path)
    with load_session(runtime["backend"], model, runtime["threads"]) as s:
        x = spec.apply(data.eval_set.images)
        top1, top1_exact, _ = accuracy(s, x, data.eval_set.labels, data.eval_set.lossless)
        images = data.eval_set.images[:16]
        logits = np.concatenate([s.run(spec.apply(images[i:i + 1])) for i in range(len(images))])
    class_names = list(data.eval_set.class_names)
    bundle = pack(model, runtime["backend"], out_dir / "bundle", spec.to_dict(), class_names, images, logits,
                  {"recipe_file": str(path), "metrics": {"accuracy": top1, "accuracy_exact": top1_exact},
                   "sha256": built.artifact.sha256}, Path(path).read_text())
    edge = EdgeModel(bundle)  # verifies the bundle's hashes and reproduces its self-test on a fresh load
    selftest = edge.selftest
    edge.session.close()
    expected = recipe.get("expected") or {}
    return {"model": str(model), "sha256": built.artifact.sha256, "expected_sha256": expected.get("sha256"),
            "same_file": expected.get("sha256") == built.artifact.sha256 if expected.get("sha256") else None,
            "deterministic": all(a.made_by.get("type") is None or _deterministic(a.made_by["type"])
                                 for a in built.artifact.lineage()),
            "accuracy": top1, "accuracy_exact": top1_exact, "expected_accuracy": expected.get("accuracy"),
            "bundle": str(bundle), "selftest": selftest, "passes": [r.to_dict() for r in built.reports],
            "artifacts": [a.to_dict() for a in built.artifact.lineage()], "data": data.note}


def _deterministic(type_name: str) -> bool:
    from edgemap.core import passes

    return passes.spec(type_name).deterministic
