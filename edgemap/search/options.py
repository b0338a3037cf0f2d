"""What `edgemap map` takes (MapOptions, one dataclass the CLI fills) and the search space it derives for a device."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgemap.errors import EdgemapError
from edgemap.search.constraints import OBJECTIVES, Constraints


def _opt(default, help: str, *, cli: str | None = None):  # noqa: ANN001, ANN202, A002 - a dataclass field
    """A MapOptions field with its command-line help (and, when the flag is not the field's name, the flag)."""
    return field(default=default, metadata={"help": help, **({"cli": cli} if cli else {})})


@dataclass
class MapOptions:
    """Everything `edgemap map` takes from the command line: each field's default and help are its option's
    (edgemap.commands.map declares the options from these fields; tuples are comma-separated lists there)."""

    model: Path | str | None = None  # None: the shipped default; a checkpoint, .onnx, .pt2 or 'pkg.mod:build_fn'
    weights: Path | None = None  # safetensors weights of an entry-point model (the shared --weights option)
    device: str = "host"  # the shared --device option
    constraints: Constraints = field(default_factory=Constraints)
    objective: str = _opt("latency", "latency | energy | size")
    trials: int = _opt(12, "distinct candidates to evaluate")
    sampler: str = _opt("tpe", "tpe | nsga2")
    seed: int = _opt(0, "seed of the sampler, the calibration sample and fine-tuning")
    executor: str = _opt("local", "local | ray")
    ray_address: str | None = _opt(None, "existing Ray cluster (default: start a local Ray)")
    workers: int = _opt(2, "trials asked per batch (any executor, so a seed gives the same search); Ray CPUs when "
                           "starting a local Ray")
    out_dir: Path = _opt(Path("out/map"), "output folder (study, artifacts, recipe, bundle, report)", cli="out")
    eval_data: Path | None = _opt(None, "evaluation data (default: the shipped 1,000-image sample)", cli="data")
    train_data: Path | None = _opt(None, "training data: enables pruning + fine-tuning, calibrates")
    val_data: Path | None = _opt(None, "images the model was NOT trained on (.npz or image folder) that judge pruning's "
                                       "fine-tuning: the probe, the early stop, the weights kept (default: 2,000 "
                                       "training images held out, which flatter a model trained on them)")
    preprocess: str | None = None  # the shared --preprocess option
    class_names: tuple[str, ...] | None = None  # --classes/--labels: the model's output order (data relabelled by name)
    prune_ratios: tuple[float, ...] = _opt((0.0,), "comma-separated channel-pruning ratios to try, e.g. 0,0.25,0.5")
    finetune_epochs: int | None = _opt(None, "fixed fine-tuning epochs instead of the step/minute budget "
                                             "(0: prune without fine-tuning)")
    finetune_steps: int | None = _opt(300, "fine-tuning budget after pruning, in optimizer steps (stops early once "
                                           "within half the accuracy bound)")
    finetune_minutes: float | None = _opt(None, "fine-tuning budget in minutes per ratio (with --finetune-steps: "
                                                "whichever runs out first)")
    finetune_precision: str = _opt("fp32", "fine-tuning precision: fp32, or bf16 (CPU autocast; faster only on some CPUs)")
    backends: tuple[str, ...] = _opt(("onnxruntime", "openvino", "litert"), "comma-separated backends to try (skipped "
                                     "where not installed or not run by the device)")
    precisions: tuple[str, ...] = _opt(("fp32", "fp16", "int8"), "comma-separated precisions to try")
    calibrations: tuple[str, ...] = _opt(("minmax", "entropy", "percentile"), "comma-separated INT8 calibration methods "
                                         "to try (each backend offers those it declares)")
    threads: tuple[int, ...] = _opt((1, 2), "comma-separated thread counts to try")
    calib_samples: int = _opt(256, "calibration images for INT8")
    latency_runs: int = _opt(100, "timed batch-1 runs per candidate")
    compare_peers: bool = _opt(False, "also build the INT8 a user would otherwise make (ONNX Runtime with Olive's "
                                      "defaults, NNCF on ONNX Runtime and on OpenVINO), scored and timed in the same run")
    timing_rounds: int = _opt(3, "alternating rounds timing the finalists and references, each alone in a fresh "
                                 "process (more: narrower spreads, longer wall time)")
    progress: bool = True  # progress bars (off in tests and benchmarks)

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise EdgemapError(f"unknown objective {self.objective!r}; use {', '.join(OBJECTIVES)}")
        if self.timing_rounds < 1:
            raise EdgemapError("--timing-rounds must be at least 1")
        if self.trials < 1:
            raise EdgemapError("--trials must be at least 1")
        if self.finetune_steps is None and self.finetune_minutes is None and self.finetune_epochs is None:
            raise EdgemapError("give a fine-tuning budget: --finetune-steps and/or --finetune-minutes (or --finetune-epochs)")
        if self.finetune_precision != "fp32":
            from edgemap.train.loop import PRECISIONS, check_precision

            if self.finetune_precision not in PRECISIONS:
                raise EdgemapError(f"--finetune-precision must be one of {', '.join(PRECISIONS)}, got {self.finetune_precision!r}")
            check_precision(self.finetune_precision)  # refused before any long work, not after the search started


def installed_backends() -> tuple[str, ...]:
    """The backends whose engines import here."""
    from edgemap.runtime.registry import available_backends

    return tuple(b for b, ok in available_backends().items() if ok)


def build_space(opts: MapOptions, profile, can_prune: bool, litert_source: bool = True,  # noqa: ANN001 - DeviceProfile
                source_format: str | None = None) -> SearchSpace:
    """The search space for this device: the precisions each of its backends runs (its profile), what is installed,
    what each backend declares it runs, what the model allows, and which pass chains exist from its format."""
    from edgemap.search.space import SearchSpace

    dtypes = sorted({d for u in profile.compute_units for d in u.dtypes})
    on_device = tuple((b, profile.backend_precisions(b)) for b in profile.runtimes)
    return SearchSpace(prune_ratios=opts.prune_ratios, precisions=opts.precisions, calibrations=opts.calibrations,
                       backends=opts.backends,
                       threads=opts.threads, can_prune=can_prune, litert_source=litert_source,
                       device_runtimes=tuple(profile.runtimes), device_dtypes=tuple(dtypes),
                       installed_backends=installed_backends(), device_precisions=on_device,
                       source_format=source_format)

