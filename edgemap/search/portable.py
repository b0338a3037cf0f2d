"""Trials that need no shared file system: everything a trial reads travels with it, and what it builds comes back.

The driver packs the trial context once (`pack`): the evaluation arrays, the model's files, the loaded data
sets and the artifacts already built (the pruned models), as bytes and arrays for Ray's object store. A
worker (`evaluate_packed`) unpacks them into its own temporary folder, points the context there, builds and
measures the candidate with the usual evaluate_one, and returns the metrics with the files it built; the
driver (`receive`) writes those into its own cache, where the cache keys (parent sha256 + pass config) are
the same, so what follows (finalists, comparison, bundle) finds them as if built locally.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from pathlib import Path

from edgemap.core.atomic import atomic_path
from edgemap.search.candidate import Candidate
from edgemap.search.evaluate import evaluate_one
from edgemap.search.records import SearchContext, TrialMetrics


def _model_files(ref: dict) -> dict[str, Path]:
    """The files a model reference needs: the model file (+ a checkpoint's sidecar), an entry point's .py and weights."""
    out = {}
    if "path" in ref:
        path = Path(ref["path"])
        out[f"model/{path.name}"] = path
        if path.suffix == ".safetensors":
            out[f"model/{path.with_suffix('.json').name}"] = path.with_suffix(".json")
    if ref.get("entry_point") and ref["entry_point"].rpartition(":")[0].endswith(".py"):
        code = Path(ref["entry_point"].rpartition(":")[0])
        out[f"model/{code.name}"] = code
    if ref.get("weights"):
        out[f"model/{Path(ref['weights']).name}"] = Path(ref["weights"])
    return out


def pack(ctx: SearchContext) -> dict:
    """The trial context (its plain form) with every file it reads as bytes, and the data sets as arrays."""
    from edgemap.pipeline.context import data_digests, data_section, load_data

    files = {name: p.read_bytes() for name, p in _model_files(ctx.recipe["model"]).items()}
    files["eval.npz"] = Path(ctx.eval_npz).read_bytes()
    cache = Path(ctx.cache_dir)
    for p in (cache.rglob("*") if cache.is_dir() else []):
        if p.is_file() and "state" not in p.relative_to(cache).parts:  # training state stays with the driver
            files[f"cache/{p.relative_to(cache).as_posix()}"] = p.read_bytes()
    section = data_section(ctx.recipe)
    return {"ctx": ctx.to_dict(), "files": files, "data_section": section, "data": load_data(*section),
            "data_digests": data_digests(ctx.recipe)}


def _localize(ctx: dict, root: Path) -> SearchContext:
    """The context with every path pointing into the worker's folder."""
    ctx = copy.deepcopy(ctx)
    ref = ctx["recipe"]["model"]
    if "path" in ref:
        ref["path"] = str(root / "model" / Path(ref["path"]).name)
    if ref.get("entry_point") and ref["entry_point"].rpartition(":")[0].endswith(".py"):
        code, _, fn = ref["entry_point"].rpartition(":")
        ref["entry_point"] = f"{root / 'model' / Path(code).name}:{fn}"
    if ref.get("weights"):
        ref["weights"] = str(root / "model" / Path(ref["weights"]).name)
    ctx.update(eval_npz=str(root / "eval.npz"), work_dir=str(root / "work"), cache_dir=str(root / "cache"))
    return SearchContext.from_dict(ctx)


def evaluate_packed(packed: dict, cand: dict) -> dict:
    """Unpack into a fresh folder, evaluate, and return {"metrics": the plain TrialMetrics (model_path relative to the
    cache), "built_files": {path in the cache: bytes}}."""
    from edgemap.pipeline.context import preload
    from edgemap.pipeline.data_digest import known

    root = Path(tempfile.mkdtemp(prefix="edgemap-trial-"))
    try:
        for name, data in packed["files"].items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        preload(*packed["data_section"], packed["data"])
        known(packed["data_digests"])  # the data's paths are the driver's: its digests stand for the files
        shipped = {n for n in packed["files"] if n.startswith("cache/")}
        m = evaluate_one(_localize(packed["ctx"], root), Candidate(**cand)).to_dict()
        cache = root / "cache"
        built = {p.relative_to(cache).as_posix(): p.read_bytes() for p in (cache.rglob("*") if cache.is_dir() else [])
                 if p.is_file() and f"cache/{p.relative_to(cache).as_posix()}" not in shipped
                 and "state" not in p.relative_to(cache).parts}
        if m.get("model_path"):
            m["model_path"] = Path(m["model_path"]).relative_to(cache).as_posix()
        return {"metrics": m, "built_files": built}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def receive(result: dict, cache_dir: str | Path) -> TrialMetrics:
    """Write the files a remote trial built into the driver's cache; its model_path then points there."""
    cache = Path(cache_dir)
    for rel, data in (result.get("built_files") or {}).items():
        target = cache / rel
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                Path(tmp).write_bytes(data)
    m = dict(result["metrics"])
    if m.get("model_path"):
        m["model_path"] = str(cache / m["model_path"])
    return TrialMetrics.from_dict(m)
