"""The steps of `edgemap map`: prepare the job, run the search, choose the mapping, verify it in one run."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from edgemap.errors import EdgemapError
from edgemap.search.options import MapOptions, build_space
from edgemap.search.pareto import pareto_front
from edgemap.search.records import SearchContext, SearchSummary, TrialMetrics
from edgemap.search.space import Candidate, SearchSpace
from edgemap.search.strategy import OBJECTIVES


@dataclass
class Job:
    """A prepared mapping job: the model, the device, the space and the context every trial receives."""

    model: Path
    profile: object  # DeviceProfile
    space: SearchSpace
    ctx: SearchContext
    preprocess: object  # PreprocessSpec
    class_names: tuple[str, ...]
    data_note: str
    torch_model: bool


@dataclass
class ModelSource:
    """What the search starts from: the source artifact, how images feed it, and (user models) the loaded model."""

    artifact: object  # edgemap.core.artifact.Artifact
    ref: dict  # the recipe's `model:` entry
    spec: object  # PreprocessSpec
    class_names: tuple[str, ...] | None
    user: object | None = None  # UserModel

    @property
    def path(self) -> Path:
        return Path(self.artifact.path) if self.artifact.path else Path(str(self.ref.get("entry_point", "model")))

    @property
    def is_checkpoint(self) -> bool:
        return self.artifact.format == "checkpoint"


def _model_source(opts: MapOptions, eval_set) -> ModelSource:  # noqa: ANN001 - ImageSet
    """A checkpoint carries its preprocessing; a user model needs --preprocess."""
    from edgemap.data.preprocess import PreprocessSpec, parse_preprocess
    from edgemap.models.shipped import shipped_checkpoint
    from edgemap.models.sources import load_user_model
    from edgemap.models.sources.loaders import model_ref, source_artifact

    ref = model_ref(opts.model or shipped_checkpoint(), opts.weights)
    if "path" in ref and ref["path"].endswith(".safetensors"):
        from edgemap.models.checkpoint import read_info

        artifact = source_artifact(ref)
        info = read_info(artifact.path)
        spec = parse_preprocess(opts.preprocess) if opts.preprocess else PreprocessSpec.from_normalization(info.normalization)
        return ModelSource(artifact, ref, _with_size(spec, info.input_shape[1:]), info.class_names)
    if not opts.preprocess:
        raise EdgemapError(f"{opts.model}: a user model needs --preprocess (e.g. 'cifar10' or 'resize=32x32,mean=0.5,std=0.5')")
    spec = parse_preprocess(opts.preprocess)
    # an entry point that states no input shape takes the one its data and preprocessing make
    user = load_user_model(str(opts.model), opts.weights, fallback_shape=spec.input_shape(eval_set.images.shape[1:3]))
    if "entry_point" in ref:
        ref["input_shape"] = list(user.info.input_shape)
    return ModelSource(source_artifact(ref), ref, _with_size(spec, user.info.image_hw), None, user)


def _with_size(spec, hw: tuple):  # noqa: ANN001, ANN202 - PreprocessSpec
    """Pin the resize to the model's input size, so the bundle accepts camera images of any size."""
    import dataclasses

    return spec if spec.resize is not None else dataclasses.replace(spec, resize=(int(hw[0]), int(hw[1])))


def model_classes(opts: MapOptions, src: ModelSource) -> tuple[str, ...] | None:
    """The model's output order: --classes/--labels, else what the model carries (a checkpoint's record, an ONNX
    file's metadata_props), else None (the data's own order is taken as the model's)."""
    from edgemap.data.classes import onnx_class_names

    carried = src.class_names
    if carried is None and src.artifact.format == "onnx" and src.artifact.path:
        carried = onnx_class_names(src.artifact.path)
    names = tuple(opts.class_names) if opts.class_names else carried
    outputs = src.user.info.num_classes if src.user is not None else len(carried or ())
    if names and outputs and len(names) != outputs:
        origin = "--classes/--labels" if opts.class_names else f"{src.path.name}'s class names"
        raise EdgemapError(f"{origin} name {len(names)} classes, the model outputs {outputs} scores")
    return names


def _base_recipe(opts: MapOptions, src: ModelSource) -> dict:
    """What every candidate's recipe shares: schema, model, data (with the model's class order) and preprocessing."""
    from edgemap.pipeline.recipe import SCHEMA_VERSION

    data = {"eval": str(opts.eval_data) if opts.eval_data else "shipped-sample",
            "train": str(opts.train_data) if opts.train_data else None}
    if opts.val_data:  # images the model was not trained on that judge pruning's fine-tuning
        data["val"] = str(opts.val_data)
    if src.class_names:
        data["classes"] = list(src.class_names)
    return {"schema": SCHEMA_VERSION, "model": src.ref, "data": data, "preprocess": src.spec.to_dict()}


def prepare(opts: MapOptions, console: Console) -> Job:
    """Resolve model, device, data and space; check they agree; write the evaluation arrays; prune."""
    from dataclasses import replace

    from edgemap.devices.catalogue import resolve
    from edgemap.pipeline.context import data_section, load_data
    from edgemap.search import prepare as prep

    profile = resolve(opts.device)
    base_data = {"data": {"eval": str(opts.eval_data) if opts.eval_data else None,
                          "train": str(opts.train_data) if opts.train_data else None}}
    eval_ref, train_ref, _ = data_section(base_data)
    src = _model_source(opts, load_data(eval_ref, train_ref).eval_set)
    src.class_names = model_classes(opts, src)
    data = load_data(eval_ref, train_ref, src.class_names)  # the very data every trial and `edgemap run` load
    if src.user is not None:
        _check_user_model(src, data.eval_set, console)
    work = Path(opts.out_dir) / "artifacts" / _fingerprint(opts, src)
    eval_npz = prep.write_arrays(work, data, src.spec)
    torch_error = _torch_form_error(src)  # converting an ONNX model to torch once answers both pruning and LiteRT
    can_prune, why = _can_prune(src, data, torch_error)
    if not can_prune and any(r > 0 for r in opts.prune_ratios):
        console.print(f"pruning is off: {why}")
    space = build_space(opts, profile, can_prune, litert_source=torch_error is None, source_format=src.artifact.format)
    settings = build_settings(opts, src.artifact.format)
    ctx = SearchContext(recipe=_base_recipe(opts, src), settings=settings, work_dir=str(work),
                        cache_dir=str(Path(opts.out_dir) / "cache"), eval_npz=str(eval_npz), device=opts.device,
                        device_is_host=profile.name == "host", latency_runs=opts.latency_runs, progress=opts.progress)
    ratios = sorted({c.prune_ratio for c in space.grid() if c.prune_ratio > 0})
    if ratios:
        console.print(f"pruning {src.path.name} at ratios {ratios}, fine-tuning {_budget_text(settings)}; "
                      "pruned models are kept for later runs of this map")
        ctx = replace(ctx, finetune=_prune_first(ctx, ratios, console))
    fp32 = _build(ctx, Candidate(0.0, "fp32", "none", "onnxruntime", 1))
    ctx = replace(ctx, fp32_onnx=str(fp32.artifact.path), baseline_accuracy=_baseline(ctx, fp32.artifact.path))
    return Job(src.path, profile, space, ctx, src.spec, tuple(src.class_names or data.eval_set.class_names), data.note,
               src.is_checkpoint)


def _build(ctx: SearchContext, c: Candidate):  # noqa: ANN202 - Built
    from edgemap.search.evaluate import build_candidate

    return build_candidate(ctx, c)


FINETUNE_SHARE = 0.5  # fine-tuning stops within this share of --max-accuracy-drop: the rest is left for quantization


def build_settings(opts: MapOptions, source_format: str):  # noqa: ANN201 - BuildSettings
    """The pass options every candidate shares, with the fine-tuning budget and its early-stopping bound."""
    from edgemap.search.compile import BuildSettings

    bound = opts.constraints.max_accuracy_drop
    return BuildSettings(source_format=source_format, finetune_epochs=opts.finetune_epochs,
                         finetune_precision=opts.finetune_precision, finetune_steps=opts.finetune_steps,
                         finetune_minutes=opts.finetune_minutes,
                         finetune_max_drop=None if bound is None else round(bound * FINETUNE_SHARE, 3),
                         calib_samples=opts.calib_samples, seed=opts.seed)


def _budget_text(s) -> str:  # noqa: ANN001 - BuildSettings
    if s.finetune_epochs is not None:
        return f"{s.finetune_epochs} epochs ({s.finetune_precision})"
    limits = [f"{s.finetune_steps} steps" if s.finetune_steps else "", f"{s.finetune_minutes:g} min" if s.finetune_minutes else ""]
    stop = f", stopping within {s.finetune_max_drop:g} points of the unpruned model" if s.finetune_max_drop is not None else ""
    return f"on a budget of {' / '.join(x for x in limits if x)}{stop}"


def _prune_first(ctx: SearchContext, ratios: list[float], console: Console) -> dict[str, dict]:
    """Prune + fine-tune once per ratio before the trials (sequentially, with progress): trials then find the
    pruned model in the cache instead of two workers training the same one. Prints, per ratio, how much of the
    fine-tuning budget it used and why a ratio was given up; returns that per ratio."""
    from edgemap.compress.prune_budget import decision_line
    from edgemap.compress.prune_widths import macs_line
    from edgemap.pipeline.context import recipe_context
    from edgemap.pipeline.recipe import build
    from edgemap.search.compile import compile_passes

    out = {}
    for r in ratios:
        first = compile_passes(Candidate(r, "fp32", "none", "onnxruntime", 1), ctx.settings)[:1]
        recipe = {**ctx.recipe, "passes": first}
        pctx, _ = recipe_context(recipe, progress=ctx.progress)
        report = build(recipe, Path(ctx.work_dir) / "pruned" / f"p{r:g}", pctx, ctx.cache_dir).reports[0]
        info = report.extra.get("finetune")
        if info is not None:
            out[f"{r:g}"] = {k: info.get(k) for k in ("budget_used", "stopped", "steps", "seconds", "optimizer", "lr",
                                                      "best_accuracy", "best_step", "target", "held_out", "given_up",
                                                      "pruning", "probe_steps", "judged_on", "decision", "macs")}
            verdict = f"[yellow]given up[/]: {info['given_up']}" if info.get("given_up") else "kept"
            macs = f"{macs_line(*report.macs)}; " if report.macs and all(report.macs) else ""  # what pruning removed
            console.print(f"  ratio {r:g}: {macs}fine-tuning used {info['budget_used']} ({info['optimizer']}, "
                          f"lr {info['lr']:.2g}); " + verdict)
            if line := decision_line(info):  # which images judged it, the paired drop and its uncertainty
                console.print(f"    {line}")
            if info.get("pruning"):  # the criterion and schedule, and why (compress/prune_choice.py)
                console.print(f"    pruning: {info['pruning']['reason']}")
    return out


def _check_user_model(src: ModelSource, eval_set, console: Console) -> None:  # noqa: ANN001 - ImageSet
    """Model, data and preprocessing must agree before any long work; then a sanity accuracy, with a hint near chance."""
    from edgemap.data.compat import require_agreement, sanity_eval

    require_agreement(src.user.info, eval_set, src.spec)
    with src.user.session(threads=0) as session:
        sanity = sanity_eval(session, eval_set, src.spec, fixed_batch=src.user.info.fixed_batch)
    console.print(f"sanity check: the unmodified model scores {sanity.top1:.1f}% on {sanity.n} images of {eval_set.source} "
                  f"(chance {sanity.chance:.0f}%)")
    if sanity.hint:
        console.print(f"[bold yellow]warning:[/] {sanity.hint}")


def _torch_form_error(src: ModelSource) -> str | None:
    """None for a checkpoint or a user model that converts to torch (LiteRT and pruning start from PyTorch);
    otherwise why it does not."""
    if src.user is None:
        return None
    try:
        src.user.torch_module()
    except EdgemapError as exc:
        return str(exc)
    return None


def _can_prune(src: ModelSource, data, torch_error: str | None) -> tuple[bool, str]:  # noqa: ANN001 - SearchData
    """Pruning needs training data, a torch form of the model, and NCHW input (the augmentation crops NCHW)."""
    if data.train_set is None:
        return False, "no training data (--train-data) to fine-tune on"
    if src.spec.layout != "nchw":
        return False, "the model takes NHWC input; pruning and fine-tuning handle NCHW models"
    if torch_error is not None:
        return False, f"the model has no torch form ({torch_error}); quantization and conversion still apply"
    if src.user is not None:
        from edgemap.pipeline.user_prune import fixed_batch_blocker

        blocker = fixed_batch_blocker(src.user.info.format, src.user.info.fixed_batch)
        if blocker is not None:
            return False, blocker
    return True, ""


# Bump when the way candidates are built changes (quantizer settings, fine-tuning rule): the artifacts folder
# and the study name derive from the fingerprint, so older trials are not reused.
BUILD_VERSION = "7"  # 2: INT8 keeps first/last layers in float; user-model fine-tuning lr by BatchNorm presence
# 3: pruned widths rounded to multiples of 8; fine-tuning keeps the checkpoint's JPEG augmentation
# 4: every candidate is its recipe, built by the recipe runner (parity gates on calibration images)
# 5: user models fine-tune on a step/minute budget with early stopping; the data carries the model's class order
# 6: pruned models' criterion (L2/Taylor) and schedule (one-shot/iterative) are chosen on a probe; checkpoints
#    fine-tune on the step/minute budget too (w22)
# 7: fine-tuning judged by a paired drop on 2,000 held-out images (or --val-data); widths rounded to the nearest multiple


def _fingerprint(opts: MapOptions, src: ModelSource) -> str:
    """Trials depend on the model, data (its paths and contents), preprocessing, calibration and how candidates are
    built: a data set changed at the same path gets a new study and artifacts folder, never the old trials."""
    from edgemap.pipeline.context import data_digests

    h = hashlib.sha256()
    h.update(BUILD_VERSION.encode())
    h.update(src.artifact.sha256.encode())
    h.update(json.dumps([str(opts.eval_data), str(opts.train_data), opts.preprocess, opts.calib_samples, opts.seed,
                         opts.finetune_epochs]).encode())
    h.update(json.dumps(data_digests({"data": {"eval": opts.eval_data and str(opts.eval_data),
                                               "train": opts.train_data and str(opts.train_data),
                                               "val": opts.val_data and str(opts.val_data)}})).encode())
    if opts.finetune_epochs is None and any(r > 0 for r in opts.prune_ratios):
        # the budget and its stopping bound shape the pruned variants
        h.update(json.dumps([opts.finetune_steps, opts.finetune_minutes, opts.constraints.max_accuracy_drop]).encode())
    if opts.finetune_precision != "fp32":  # only then, so fp32 searches keep their cached trials
        h.update(opts.finetune_precision.encode())
    return f"{src.path.stem}-{h.hexdigest()[:10]}"


def _baseline(ctx: SearchContext, fp32_onnx: Path) -> float:
    """Accuracy of the unmodified model (FP32 ONNX in ONNX Runtime) on the evaluation set."""
    from edgemap.runtime.onnxruntime_backend import OrtSession
    from edgemap.search.evaluate import eval_arrays, accuracy

    x, labels, exact = eval_arrays(ctx.eval_npz)
    with OrtSession(fp32_onnx, threads=0) as s:
        return accuracy(s, x, labels, exact)[0]


def search(opts: MapOptions, job: Job, console: Console) -> dict[str, TrialMetrics]:
    """Run the Optuna search with the chosen executor and a progress bar showing the best feasible mapping."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from edgemap.search.evaluate import evaluate_one
    from edgemap.search.executors import make_executor
    from edgemap.search.strategy import make_study, run_search

    skipped = job.space.skipped()
    if skipped:
        reasons = sorted(set(skipped.values()))
        console.print(f"skipped {len(skipped)} candidate(s) before running: " + "; ".join(reasons))
    name = f"{job.model.stem}-{opts.device}-{opts.objective}-{hashlib.sha256(json.dumps([job.ctx.work_dir, str(job.space.grid()), str(opts.constraints), opts.sampler, opts.seed]).encode()).hexdigest()[:8]}"
    study = make_study(Path(opts.out_dir) / "study.db", name, opts.sampler, opts.seed)
    executor = make_executor(opts.executor, evaluate_one, job.ctx, opts.ray_address, opts.workers)
    key = OBJECTIVES[opts.objective]
    best: list[TrialMetrics] = []
    with Progress(TextColumn("[bold]search"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=console, disable=not opts.progress) as bar:
        task = bar.add_task("", total=min(opts.trials, len(job.space.grid())))

        def on_result(m: TrialMetrics) -> None:
            if m.ok and not opts.constraints.violations(m) and (not best or m.value(key) < best[0].value(key)):
                best[:] = [m]
            desc = (f"best feasible: {best[0].key} {best[0].value(key):.4g} ({best[0].accuracy:.2f}%)" if best
                    else "no feasible mapping yet")
            bar.update(task, advance=1, description=desc)

        try:
            # trials are asked in batches of --workers whatever the executor: the batch size shapes what the
            # sampler has seen at each ask, so a seed gives the same search (and front) locally and on Ray
            results = run_search(job.space, executor, study, opts.trials, opts.objective, opts.constraints,
                                 parallel=max(1, opts.workers), on_result=on_result)
        finally:
            executor.close()
    return results


def choose(opts: MapOptions, job: Job, results: dict[str, TrialMetrics]) -> SearchSummary:
    """Pareto front (accuracy, objective, size), the feasible best on the objective, or the nearest misses. On
    estimated latencies, estimates within the predictor's own error are ties (search/estimate_ties.py)."""
    from dataclasses import replace

    from edgemap.search import estimate_ties

    key = OBJECTIVES[opts.objective]
    trials = tuple(replace(m, violations=opts.constraints.violations(m)) if m.ok else m for m in results.values())
    ok = [m for m in trials if m.ok]
    estimated = estimate_ties.on_estimates(ok, key)
    front_idx = pareto_front([{"accuracy": m.accuracy, key: m.value(key), "size_bytes": m.size_bytes} for m in ok],
                             {"accuracy": "max", key: "min", "size_bytes": "min"},
                             {key: estimate_ties.bands(ok, opts.device)} if estimated else None)
    feasible = [m for m in ok if not m.violations]
    chosen, choice = None, {}
    if feasible and estimated:
        chosen, choice = estimate_ties.choose_on_estimates(feasible, key, opts.device)
    elif feasible:
        chosen = min(feasible, key=lambda m: (m.value(key), -m.accuracy))  # measure() may re-choose
    nearest = sorted(ok, key=lambda m: (len(m.violations), m.accuracy_drop, m.value(key)))[:3] if not feasible else []
    return SearchSummary(objective=opts.objective, objective_key=key, device=opts.device,
                         baseline_accuracy=job.ctx.baseline_accuracy, data=job.data_note, constraints=opts.constraints,
                         trials=trials, front=tuple(ok[i].key for i in front_idx), chosen=chosen, nearest=tuple(nearest),
                         failed={m.key: m.error for m in trials if not m.ok}, finetune=job.ctx.finetune, choice=choice)


def measure(opts: MapOptions, job: Job, summary: SearchSummary,
            extra: dict[str, tuple[str, str]] | None = None) -> SearchSummary:
    """Time the finalists and the references (and `extra`, e.g. the peers: name -> (backend, file)) each alone in a
    fresh process, at every thread count, in alternating rounds (search/robust.py); on the host latency objective
    re-choose among the fastest feasible files on the median (ties: more accurate, then smaller). Returns the summary
    with its chosen mapping, finalists, comparison and timing."""
    from dataclasses import replace

    from edgemap.search import robust

    key = OBJECTIVES[opts.objective]
    feasible = [m.to_dict() for m in summary.trials if m.ok and not m.violations]  # robust reads the plain records
    rechoose = key == "latency_ms" and job.ctx.device_is_host
    rows, roles = robust.timing_rows(job, feasible if rechoose else [summary.chosen.to_dict()],
                                     [m.to_dict() for m in summary.trials], opts.constraints.max_accuracy_drop, extra)
    result = robust.time_rows(rows, opts.threads, opts.timing_rounds)
    chosen, finalists = summary.chosen, {}
    if rechoose:
        picked, ranking = robust.choose_finalist(result, roles, feasible)
        chosen = summary.trial(picked["key"])
        finalists = {n: {**result.best(n).to_dict(), "rank": i + 1} for i, n in enumerate(ranking)}
    timing = {"method": result.evidence.get("method"), "rounds": result.rounds, "runs": result.runs,
              "threads": sorted(set(opts.threads)), "cpu": robust.cpu_line(result.evidence),
              "evidence": result.evidence, "timings": [t.to_dict() for t in result.timings],
              "bursts": robust.burst_check(result, rows, ranking) if rechoose else None}
    return replace(summary, chosen=chosen, finalists=finalists,
                   comparison=robust.comparison(result, rows, roles, chosen.to_dict()), timing=timing)
