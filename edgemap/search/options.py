"""What `edgemap map` takes (MapOptions, one dataclass the CLI fills) and the search space it derives for a device."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgemap.errors import EdgemapError
from edgemap.search.space import SearchSpace
from edgemap.search.strategy import OBJECTIVES, Constraints


@dataclass
class MapOptions:
    """Everything `edgemap map` takes from the command line."""

    model: Path | str | None = None  # None: the shipped default; a checkpoint, .onnx, .pt2 or 'pkg.mod:build_fn'
    weights: Path | None = None  # safetensors weights of an entry-point model
    device: str = "host"
    constraints: Constraints = field(default_factory=Constraints)
    objective: str = "latency"
    trials: int = 12
    sampler: str = "tpe"
    seed: int = 0
    executor: str = "local"
    ray_address: str | None = None
    workers: int = 2
    out_dir: Path = Path("out/map")
    eval_data: Path | None = None
    train_data: Path | None = None
    preprocess: str | None = None
    class_names: tuple[str, ...] | None = None  # --classes/--labels: the model's output order (data relabelled by name)
    prune_ratios: tuple[float, ...] = (0.0,)
    finetune_epochs: int | None = None  # None: user models fine-tune on the step/minute budget (checkpoints: 2 epochs)
    finetune_steps: int | None = 300
    finetune_minutes: float | None = None
    finetune_precision: str = "fp32"  # bf16: fine-tune pruned models under CPU autocast (faster on some CPUs)
    backends: tuple[str, ...] = ("onnxruntime", "openvino", "litert")  # litert: fastest INT8 on the host map
    precisions: tuple[str, ...] = ("fp32", "fp16", "int8")
    calibrations: tuple[str, ...] = ("minmax", "entropy", "percentile")  # INT8 calibration methods to try
    threads: tuple[int, ...] = (1, 2)
    calib_samples: int = 256
    latency_runs: int = 100
    compare_peers: bool = False  # build, score and time the INT8 a user would otherwise make (edgemap.peers)
    timing_rounds: int = 3  # alternating rounds of the isolated timing of finalists and references
    progress: bool = True

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
    dtypes = sorted({d for u in profile.compute_units for d in u.dtypes})
    on_device = tuple((b, profile.backend_precisions(b)) for b in profile.runtimes)
    return SearchSpace(prune_ratios=opts.prune_ratios, precisions=opts.precisions, calibrations=opts.calibrations,
                       backends=opts.backends,
                       threads=opts.threads, can_prune=can_prune, litert_source=litert_source,
                       device_runtimes=tuple(profile.runtimes), device_dtypes=tuple(dtypes),
                       installed_backends=installed_backends(), device_precisions=on_device,
                       source_format=source_format)

