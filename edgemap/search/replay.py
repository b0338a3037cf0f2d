"""`edgemap run recipe.yaml`: rebuild a mapping from its recipe, measure it, and pack its bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgemap.errors import EdgemapError


def _data(recipe: dict):  # noqa: ANN202 - (eval ImageSet, train ImageSet | None)
    from edgemap.data.resolve import load_eval_data
    from edgemap.data.sample import load_sample
    from edgemap.search.prepare import split_data

    d = recipe.get("data") or {}
    eval_set = load_sample() if d.get("eval") in (None, "shipped-sample") else load_eval_data(d["eval"], "test")
    train_set = load_eval_data(d["train"], "train") if d.get("train") else None
    return split_data(eval_set, train_set)


def run_recipe_file(path: str | Path, out_dir: str | Path) -> dict:
    """Run the recipe's passes, convert for its backend, evaluate, and write out_dir/bundle."""
    from edgemap.compress.context import PassContext
    from edgemap.compress.recipe import load_recipe, run_recipe
    from edgemap.convert.api import convert
    from edgemap.data.preprocess import PreprocessSpec
    from edgemap.deploy.bundle import pack
    from edgemap.runtime.registry import load_session
    from edgemap.search.evaluate import accuracy

    recipe = load_recipe(path)
    passes = list(recipe.get("passes") or [])
    conv = passes.pop() if passes and passes[-1].get("type") == "convert" else None
    if any(p.get("type") == "convert" for p in passes):
        raise EdgemapError(f"{path}: 'convert' must be the last pass")
    spec = PreprocessSpec.from_dict(recipe.get("preprocess") or {}, f"{path}: preprocess")
    data = _data(recipe)
    out_dir = Path(out_dir)
    ctx = PassContext(train_set=data.calib_set if data.train_set is None else data.train_set, eval_set=None, latency_runs=0)
    reports = run_recipe({**recipe, "passes": passes}, out_dir / "passes", ctx) if passes else []
    model = Path(recipe["model"]["path"]) if not reports else out_dir / "passes" / sorted(p.name for p in (out_dir / "passes").glob("0*"))[-1]
    runtime = recipe.get("runtime") or {"backend": "onnxruntime", "threads": 0}
    if conv:
        target = out_dir / ("model.xml" if conv["to"] == "openvino" else "model.tflite")
        model = convert(model, conv["to"], target, precision=conv.get("precision", "fp32")).path
    with load_session(runtime["backend"], model, runtime.get("threads", 0)) as s:
        x = spec.apply(data.eval_set.images)
        top1, top1_exact, _ = accuracy(s, x, data.eval_set.labels, data.eval_set.lossless)
        images = data.eval_set.images[:16]
        logits = np.concatenate([s.run(spec.apply(images[i:i + 1])) for i in range(len(images))])
    bundle = pack(model, runtime["backend"], out_dir / "bundle", spec.to_dict(), list(data.eval_set.class_names), images, logits,
                  {"recipe_file": str(path), "metrics": {"accuracy": top1, "accuracy_exact": top1_exact}},
                  Path(path).read_text())
    return {"model": str(model), "accuracy": top1, "accuracy_exact": top1_exact, "bundle": str(bundle),
            "passes": [r.to_dict() for r in reports], "data": data.note}
