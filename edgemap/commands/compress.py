"""`edgemap compress ...`: pruning, quantization, QAT and distillation passes, alone or as a recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgemap.commands.compress_data import checkpoint_context, make_context, onnx_context
from edgemap.commands.compress_user import is_checkpoint, prune_user, refuse_checkpoint_options
from edgemap.commands.options import CLASSES_OPTION, LABELS_OPTION, MODEL_HELP, PREPROCESS_OPTION, WEIGHTS_OPTION
from edgemap.data.classes import class_names_option

DATA_HELP = ("training data for fine-tuning / calibration: CIFAR-10 location, .npz or image folder (default "
             "$EDGEMAP_CIFAR10; calibration falls back to the shipped sample)")
EVAL_HELP = "accuracy data: CIFAR-10 location, .npz or image folder (default: $EDGEMAP_CIFAR10 test, else the shipped sample)"
PRECISION_HELP = ("training precision: fp32, or bf16 (CPU autocast; faster only where the CPU runs bf16 fast: "
                  "benchmarks/train_precision.py measures it)")

WEIGHT_DECAY = 5e-4  # prune's fixed-epoch fine-tuning default (a user's model has no such option: given, it is refused)

# options several `compress` commands take, declared once
DATA_OPTION = typer.Option(None, help=DATA_HELP)
EVAL_DATA_OPTION = typer.Option(None, help=EVAL_HELP)
LIMIT_OPTION = typer.Option(0, help="use the first N training images only (0: all)")
LATENCY_RUNS_OPTION = typer.Option(200, help="timed batch-1 runs per model (0: skip latency)")
RUN_DIR_OPTION = typer.Option(None, help="resumable training state")
REPORT_OPTION = typer.Option(None, help="write the report as JSON here")
PRECISION_OPTION = typer.Option("fp32", help=PRECISION_HELP)
MIXUP_OPTION = typer.Option(0.0, help="mixup Beta parameter (0: off); a teacher labels the blended images too")
TEACHER_MIRROR_OPTION = typer.Option(False, help="distil from the teacher's logits averaged over each image and its "
                                     "left-right mirror (a better teacher for one more forward pass; only where a "
                                     "mirrored image keeps its label)")


def register(app: typer.Typer) -> None:
    """Add the `compress` command group to the CLI."""
    group = typer.Typer(no_args_is_help=True, help="Compress a model: prune, quantize, QAT, distil, or run a recipe.")
    app.add_typer(group, name="compress")
    _add_prune(group)
    _add_sparsify(group)
    _add_quantize(group)
    _add_qat(group)
    _add_distill(group)
    _add_recipe(group)
    _add_passes(group)


def _add_prune(group: typer.Typer) -> None:
    """Add `compress prune`."""

    @group.command("prune")
    def prune_cmd(
        checkpoint: Path = typer.Argument(..., help="checkpoint (.safetensors), or a user's .onnx, .pt2 or entry point "
                                                    "'pkg.module:build_fn' (with --weights; needs --preprocess)"),
        out: Path = typer.Option(..., help="pruned checkpoint to write (.onnx for a user's model)"),
        weights: Optional[Path] = WEIGHTS_OPTION,
        preprocess: Optional[str] = PREPROCESS_OPTION,
        ratio: Optional[float] = typer.Option(None, help="fraction of channels removed, in (0, 1) (default 0.5)"),
        target_macs: Optional[int] = typer.Option(None, help="instead of --ratio: prune until at most this many MACs"),
        importance: str = typer.Option("auto", help="auto (on the budget: L2 or Taylor, one-shot or in 3 steps, chosen "
                                                    "on a short probe by held-out accuracy; else l2), l1, l2 or taylor"),
        global_pruning: bool = typer.Option(False, "--global", help="one ratio over the whole net instead of per layer"),
        steps: int = typer.Option(1, help="iterative pruning steps"),
        step_epochs: int = typer.Option(0, help="with --steps: fine-tuning epochs after each step but the last"),
        keep: list[str] = typer.Option([], "--keep", help="never prune this layer's output channels (repeatable; a module "
                                                          "name such as prep, the stem)"),
        layer_ratio: list[str] = typer.Option([], "--layer-ratio", help="MODULE=RATIO: this layer's own ratio (repeatable)"),
        round_to: Optional[int] = typer.Option(None, help="keep channel counts multiples of this (INT8 kernels run "
                                                         "odd widths slowly)"),
        finetune_steps: Optional[int] = typer.Option(300, help="fine-tuning budget in optimizer steps (with distillation "
                                                               "as given; stops early within --max-drop)"),
        finetune_minutes: Optional[float] = typer.Option(None, help="fine-tuning budget in minutes (with or instead of steps)"),
        max_drop: Optional[float] = typer.Option(None, help="stop fine-tuning once within this many points of the "
                                                            "unpruned model (a paired drop's 95 % upper bound) on "
                                                            "--val-data, else on held-out training images"),
        val_data: Optional[Path] = typer.Option(None, help="images the model was NOT trained on (.npz or image folder) "
                                                           "that judge the fine-tuning (default: --held-out training "
                                                           "images, which flatter a model trained on them)"),
        held_out: int = typer.Option(2000, help="without --val-data: training images held out to judge the fine-tuning"),
        optimizer: str = typer.Option("auto", help="budget fine-tuning: auto (AdamW without BatchNorm, SGD with), adamw, sgd"),
        probe_steps: Optional[int] = typer.Option(None, help="steps per candidate of the --importance auto probe "
                                                             "(default: a tenth of --finetune-steps, 3 to 30)"),
        finetune_epochs: Optional[int] = typer.Option(None, help="fine-tune by epochs instead of the budget (the fixed "
                                                                 "way; 0: no fine-tuning)"),
        lr: Optional[float] = typer.Option(None, help="fine-tuning peak learning rate (default: a range test on the "
                                                      "budget, 0.05 by epochs)"),
        weight_decay: float = typer.Option(WEIGHT_DECAY, help="fine-tuning weight decay (by epochs)"),
        norm_bias_decay: bool = typer.Option(True, help="also weight-decay BatchNorm parameters and biases "
                                             "(--no-norm-bias-decay exempts them)"),
        distill: Optional[bool] = typer.Option(None, "--distill/--no-distill", help="fine-tune with the unpruned model "
                                               "as teacher (default: off for checkpoints, on for a user's model)"),
        temperature: Optional[float] = typer.Option(None, help="with --distill: softmax temperature (default 4; a teacher "
                                                               "trained with label smoothing says more at 1-2)"),
        alpha: Optional[float] = typer.Option(None, help="with --distill: weight of the distillation term (default 0.5)"),
        teacher_mirror: bool = TEACHER_MIRROR_OPTION,
        jpeg_augment: Optional[float] = typer.Option(None, help="share of fine-tuning images given a JPEG round trip "
                                                               "(default: what the checkpoint was trained with)"),
        precision: str = PRECISION_OPTION,
        mixup: float = MIXUP_OPTION,
        data: Optional[Path] = DATA_OPTION,
        eval_data: Optional[Path] = EVAL_DATA_OPTION,
        limit: int = LIMIT_OPTION,
        latency_runs: int = LATENCY_RUNS_OPTION,
        run_dir: Optional[Path] = RUN_DIR_OPTION,
        report: Optional[Path] = REPORT_OPTION,
        classes: Optional[str] = CLASSES_OPTION,
        labels: Optional[Path] = LABELS_OPTION,
    ) -> None:
        """Structured channel pruning (channels physically removed), then fine-tuning on a step/minute budget (or by
        epochs), optionally distilling from the unpruned model."""
        import os

        from edgemap.compress.prune import PruneChannels, parse_layer_ratios, prune_checkpoint
        from edgemap.data.cifar10 import ENV_VAR
        from edgemap.errors import EdgemapError

        if val_data is not None and finetune_epochs is not None:
            raise EdgemapError("--val-data judges fine-tuning on the step/minute budget; --finetune-epochs does not use it")
        if not is_checkpoint(checkpoint):
            refuse_checkpoint_options({"--target-macs": target_macs is not None, "--global": global_pruning,
                                       "--steps": steps != 1, "--step-epochs": step_epochs != 0, "--keep": bool(keep),
                                       "--layer-ratio": bool(layer_ratio), "--teacher-mirror": teacher_mirror,
                                       "--jpeg-augment": jpeg_augment is not None, "--mixup": mixup != 0,
                                       "--temperature/--alpha": temperature is not None or alpha is not None,
                                       "--weight-decay": weight_decay != WEIGHT_DECAY,
                                       "--no-norm-bias-decay": not norm_bias_decay, "--limit": limit != 0,
                                       "--run-dir": run_dir is not None})
            given = {k: v for k, v in (("ratio", ratio), ("round_to", round_to)) if v is not None}  # else the pass's
            settings = {**given, "finetune_steps": finetune_steps, "finetune_minutes": finetune_minutes,
                        "optimizer": optimizer, "max_drop": max_drop, "finetune_epochs": finetune_epochs, "distill": distill is not False,
                        "lr": lr, "precision": precision, "importance": importance, "probe_steps": probe_steps,
                        "held_out": held_out}
            show(prune_user(checkpoint, weights, out, settings, data, eval_data, preprocess, latency_runs,
                            class_names_option(classes, labels), val_data), report, checkpoint)
            return
        if weights is not None or preprocess is not None:
            raise EdgemapError("--weights and --preprocess are for a user's model; a checkpoint carries its own")
        distill = bool(distill)
        if not distill and (temperature is not None or alpha is not None):
            raise EdgemapError("--temperature and --alpha set the distillation loss: add --distill")
        kd = {k: v for k, v in (("temperature", temperature), ("alpha", alpha)) if v is not None}
        cfg = PruneChannels(ratio=ratio if ratio is not None else (None if target_macs else 0.5), target_macs=target_macs,
                            importance=importance, global_pruning=global_pruning, iterative_steps=steps,
                            step_finetune_epochs=step_epochs, weight_decay=weight_decay, norm_bias_decay=norm_bias_decay,
                            keep_layers=tuple(keep), layer_ratios=parse_layer_ratios(layer_ratio),
                            round_to=round_to, finetune_epochs=finetune_epochs, finetune_lr=lr, distill=distill,
                            teacher_mirror=teacher_mirror, jpeg_augment=jpeg_augment, precision=precision, mixup=mixup,
                            finetune_steps=finetune_steps, finetune_minutes=finetune_minutes, max_drop=max_drop,
                            optimizer=optimizer, probe_steps=probe_steps, held_out=held_out, **kd)
        needs_data = finetune_epochs is None or finetune_epochs > 0 or step_epochs > 0 or importance == "taylor"
        if needs_data and data is None and not os.environ.get(ENV_VAR):
            raise EdgemapError(f"fine-tuning after pruning needs training data: give --data or set ${ENV_VAR} "
                               "(--finetune-epochs 0 prunes without fine-tuning)")
        ctx = checkpoint_context(checkpoint, data, eval_data, limit, latency_runs, run_dir, needs_data,
                                 class_names_option(classes, labels), val_data)
        show(prune_checkpoint(cfg, checkpoint, out, ctx), report, checkpoint)


def _add_sparsify(group: typer.Typer) -> None:
    """Add `compress sparsify`."""

    @group.command("sparsify")
    def sparsify_cmd(
        checkpoint: Path = typer.Argument(..., help="checkpoint (.safetensors)"),
        out: Path = typer.Option(..., help="sparse checkpoint to write (bit-packed)"),
        sparsity: float = typer.Option(0.5, help="fraction of weights zeroed, in (0, 1)"),
        scope: str = typer.Option("global", help="global or layer"),
        finetune_epochs: int = typer.Option(0),
        data: Optional[Path] = DATA_OPTION,
        eval_data: Optional[Path] = EVAL_DATA_OPTION,
        limit: int = LIMIT_OPTION,
        latency_runs: int = LATENCY_RUNS_OPTION,
        report: Optional[Path] = REPORT_OPTION,
        classes: Optional[str] = CLASSES_OPTION,
        labels: Optional[Path] = LABELS_OPTION,
    ) -> None:
        """Unstructured magnitude pruning; smaller file, no speedup on dense kernels (the report says so)."""
        from edgemap.compress.sparse import PruneMagnitude, prune_magnitude_checkpoint

        cfg = PruneMagnitude(sparsity=sparsity, scope=scope, finetune_epochs=finetune_epochs)
        ctx = checkpoint_context(checkpoint, data, eval_data, limit, latency_runs, None, finetune_epochs > 0,
                                 class_names_option(classes, labels))
        show(prune_magnitude_checkpoint(cfg, checkpoint, out, ctx), report, checkpoint)


def _add_quantize(group: typer.Typer) -> None:
    """Add `compress quantize`."""

    @group.command("quantize")
    def quantize_cmd(
        model: Path = typer.Argument(..., help="FP32 .onnx model, or any model source (exported to ONNX first): " + MODEL_HELP),
        out: Path = typer.Option(..., help=".onnx file to write"),
        weights: Optional[Path] = WEIGHTS_OPTION,
        mode: str = typer.Option("static", help="static (INT8 QDQ), dynamic (INT8) or fp16"),
        calibration: str = typer.Option("minmax", help="static: minmax, entropy or percentile"),
        samples: int = typer.Option(512, help="static: calibration images"),
        symmetric: bool = typer.Option(False, help="static: symmetric int8 activations (default uint8 asymmetric)"),
        per_channel: bool = typer.Option(True, help="static: per-channel weights"),
        max_accuracy_drop: Optional[float] = typer.Option(None, help="static: keep sensitive layers in float until the top-1 drop (points) is met"),
        exclude: list[str] = typer.Option([], help="static: node names kept in float"),
        float_first_last: bool = typer.Option(False, help="static: keep the first and last quantizable layers in float"),
        data: Optional[Path] = DATA_OPTION,
        eval_data: Optional[Path] = EVAL_DATA_OPTION,
        preprocess: Optional[str] = typer.Option(None, help="how --data / --eval-data images become the model's inputs "
                                                            "(string or YAML), for a model that is not fed like CIFAR-10"),
        latency_runs: int = LATENCY_RUNS_OPTION,
        report: Optional[Path] = REPORT_OPTION,
        classes: Optional[str] = CLASSES_OPTION,
        labels: Optional[Path] = LABELS_OPTION,
    ) -> None:
        """Quantize an ONNX model with ONNX Runtime; INT8 results are checked to run integer kernels."""
        from edgemap.compress import quantize as q
        from edgemap.errors import EdgemapError

        import tempfile

        from edgemap.pipeline.sources import onnx_of

        tmp = tempfile.TemporaryDirectory(prefix="edgemap-quantize-")
        given = model  # the run's parent: the file the user named, not the temporary export
        model = onnx_of(model, weights, tmp.name)  # a checkpoint, .pt2 or entry point is exported (parity-gated) first
        ctx = onnx_context(model, data, eval_data, preprocess, latency_runs, class_names_option(classes, labels))
        if mode == "static":
            cfg = q.QuantizeStatic(calibration=calibration, samples=samples, per_channel=per_channel,
                                   symmetric_activations=symmetric, max_accuracy_drop=max_accuracy_drop, exclude=tuple(exclude),
                                   float_first_last=float_first_last)
            show(q.quantize_static_file(cfg, model, out, ctx), report, given)
        elif mode == "dynamic":
            show(q.quantize_dynamic_file(q.QuantizeDynamic(per_channel=per_channel), model, out, ctx), report, given)
        elif mode == "fp16":
            show(q.quantize_fp16_file(q.QuantizeFp16(), model, out, ctx), report, given)
        else:
            raise EdgemapError(f"unknown quantization mode {mode!r}; use static, dynamic or fp16")


def _add_qat(group: typer.Typer) -> None:
    """Add `compress qat`."""

    @group.command("qat")
    def qat_cmd(
        checkpoint: Path = typer.Argument(..., help="checkpoint (.safetensors)"),
        out: Path = typer.Option(..., help="INT8 QDQ .onnx to write"),
        epochs: int = typer.Option(2), lr: float = typer.Option(0.01), samples: int = typer.Option(256),
        data: Optional[Path] = DATA_OPTION,
        eval_data: Optional[Path] = EVAL_DATA_OPTION,
        limit: int = LIMIT_OPTION,
        latency_runs: int = LATENCY_RUNS_OPTION,
        run_dir: Optional[Path] = RUN_DIR_OPTION,
        report: Optional[Path] = REPORT_OPTION,
        classes: Optional[str] = CLASSES_OPTION,
        labels: Optional[Path] = LABELS_OPTION,
    ) -> None:
        """Quantization-aware training, exported to an INT8 QDQ ONNX model; compared with static PTQ."""
        from edgemap.compress.qat import Qat, qat_checkpoint

        ctx = checkpoint_context(checkpoint, data, eval_data, limit, latency_runs, run_dir, True, class_names_option(classes, labels))
        show(qat_checkpoint(Qat(epochs=epochs, lr=lr, samples=samples), checkpoint, out, ctx), report, checkpoint)


def _add_distill(group: typer.Typer) -> None:
    """Add `compress distill`."""

    @group.command("distill")
    def distill_cmd(
        teacher: Path = typer.Argument(..., help="teacher checkpoint (.safetensors)"),
        out: Path = typer.Option(..., help="student checkpoint to write"),
        student: str = typer.Option("writeup_cnn", help="zoo name (fresh) or a .safetensors checkpoint (e.g. pruned)"),
        epochs: int = typer.Option(5), lr: float = typer.Option(0.05),
        temperature: float = typer.Option(4.0), alpha: float = typer.Option(0.9),
        teacher_mirror: bool = TEACHER_MIRROR_OPTION,
        baseline: bool = typer.Option(True, help="also train the student without distillation, same budget"),
        jpeg_augment: Optional[float] = typer.Option(None, help="share of training images given a JPEG round trip "
                                                               "(default: what the teacher was trained with)"),
        precision: str = PRECISION_OPTION,
        mixup: float = MIXUP_OPTION,
        data: Optional[Path] = DATA_OPTION,
        eval_data: Optional[Path] = EVAL_DATA_OPTION,
        limit: int = LIMIT_OPTION,
        latency_runs: int = LATENCY_RUNS_OPTION,
        run_dir: Optional[Path] = RUN_DIR_OPTION,
        report: Optional[Path] = REPORT_OPTION,
        classes: Optional[str] = CLASSES_OPTION,
        labels: Optional[Path] = LABELS_OPTION,
    ) -> None:
        """Knowledge distillation (Hinton loss) into a student, with the no-distillation baseline."""
        from edgemap.compress.distill import Distill, distill_checkpoint

        cfg = Distill(student=student, epochs=epochs, lr=lr, temperature=temperature, alpha=alpha, compare_baseline=baseline,
                      teacher_mirror=teacher_mirror, jpeg_augment=jpeg_augment, precision=precision, mixup=mixup)
        ctx = checkpoint_context(teacher, data, eval_data, limit, latency_runs, run_dir, True, class_names_option(classes, labels))
        show(distill_checkpoint(cfg, teacher, out, ctx), report, teacher)


def _add_recipe(group: typer.Typer) -> None:
    """Add `compress recipe`."""

    @group.command("recipe")
    def recipe_cmd(
        recipe: Path = typer.Argument(..., help="recipe YAML/JSON: model + passes"),
        out_dir: Path = typer.Option(..., help="folder for every pass's output and report.json"),
        data: Optional[Path] = DATA_OPTION,
        eval_data: Optional[Path] = EVAL_DATA_OPTION,
        limit: int = LIMIT_OPTION,
        latency_runs: int = LATENCY_RUNS_OPTION,
    ) -> None:
        """Run a recipe's passes in order (validated before anything runs)."""
        from edgemap.pipeline.recipe import build, load_recipe, plan

        spec = load_recipe(recipe)
        plan(spec)  # fail on a bad recipe before loading any data
        # training data is loaded when given or configured; a pass that needs it and lacks it says so
        built = build(spec, out_dir, make_context(data, eval_data, limit, latency_runs, None, False))
        for r in built.reports:
            show(r, None, record=False)
        record_recipe(built, spec)


def _add_passes(group: typer.Typer) -> None:
    """Add `compress passes`."""

    @group.command("passes")
    def passes_cmd() -> None:
        """List the registered pass types a recipe can name."""
        import edgemap.pipeline.loaded  # noqa: F401 - registers every pass
        from edgemap.core import passes

        passes.ensure_loaded()
        for name in passes.names():
            s = passes.spec(name)
            needs = f"needs {' + '.join(s.needs)} data" if s.needs else ""
            typer.echo(f"{name:<18} {'|'.join(s.consumes):>30} -> {s.produces:<10} {needs}"
                       f"{'' if s.deterministic else ' (not deterministic)'}")


def show(report, json_path: Path | None, source: Path | str | None = None,  # noqa: ANN001 - CompressionReport
         record: bool = True) -> None:
    """Print a report, optionally write it as JSON, and record it as a run (parent: `source`'s sha256)."""
    from rich.console import Console

    from edgemap.core.atomic import write_json

    Console(highlight=False).print("\n".join(report.lines()))
    if json_path:
        write_json(json_path, report.to_dict())
    if record:
        from edgemap.core.evidence import machine_evidence
        from edgemap.results.builders import compress_run
        from edgemap.results.record import record_run

        record_run(compress_run(report.to_dict(), source, machine_evidence()))


def record_recipe(built, recipe: dict) -> None:  # noqa: ANN001 - edgemap.pipeline.recipe.Built
    """One run per pass of a recipe, in one group: each output's parent is the artifact the pass took (by its sha256),
    its recipe the pass config within the whole recipe."""
    from edgemap.core.evidence import machine_evidence
    from edgemap.results.builders import compress_run
    from edgemap.results.record import record_run
    from edgemap.results.records import new_run_id

    evidence, group, runs = machine_evidence(), new_run_id(), []
    for report, made in zip(built.reports, built.artifact.lineage()[1:]):  # the source first: no pass made it
        run = compress_run(report.to_dict(), made.parent.path, evidence, made.parent.sha256)
        run.group_id, run.model_sha256, run.recipe = group, made.sha256, {"pass": made.made_by, "recipe": recipe}
        runs.append(run)
    record_run(*runs)
