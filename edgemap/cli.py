"""The `edgemap` command line: one sub-command per stage.

User errors (EdgemapError) become one line on stderr and exit status 2; heavy libraries are
imported inside the commands so that `edgemap --help` and the edge commands stay light.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from edgemap.commands.options import (CLASSES_OPTION, DEVICE_OPTION, INPUT_SHAPE_OPTION, LABELS_OPTION, MODEL_HELP,
                                      PREPROCESS_OPTION, RUNTIME_THREADS_OPTION, SEED_OPTION, WEIGHTS_OPTION)
from edgemap.errors import EdgemapError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Map deep-learning models onto edge devices.")


@app.command("models")
def models_cmd(all_: bool = typer.Option(False, "--all", help="include test-only models")) -> None:
    """List the model zoo with parameters and MACs."""
    from edgemap.commands.models import list_models

    list_models(include_test=all_)


@app.command("train")
def train_cmd(
    model: str = typer.Option("resnet9s", help="zoo architecture"),
    epochs: int = typer.Option(30),
    batch_size: int = typer.Option(512),
    lr: float = typer.Option(0.4, help="peak learning rate"),
    schedule: str = typer.Option("onecycle", help="onecycle or cosine"),
    label_smoothing: float = typer.Option(0.1),
    weight_decay: float = typer.Option(5e-4),
    norm_bias_decay: bool = typer.Option(True, help="also weight-decay BatchNorm parameters and biases "
                                         "(--no-norm-bias-decay exempts them)"),
    seed: int = SEED_OPTION,
    threads: int = typer.Option(0, help="torch threads (0: default)"),
    data: Optional[Path] = typer.Option(None, help="CIFAR-10 location (default $EDGEMAP_CIFAR10)"),
    out: Path = typer.Option(Path("runs/model.safetensors"), help="checkpoint to write"),
    run_dir: Optional[Path] = typer.Option(None, help="resumable state (default: next to --out)"),
    limit: int = typer.Option(0, help="train on the first N images only (0: all)"),
    jpeg_augment: float = typer.Option(0.0, help="share of training images replaced by a JPEG (q75, 4:2:0) copy"),
    precision: str = typer.Option("fp32", help="fp32, or bf16 (CPU autocast; faster only where the CPU runs bf16 fast: benchmarks/train_precision.py measures it)"),
    mixup: float = typer.Option(0.0, help="mixup Beta parameter (0: off)"),
    init: Optional[Path] = typer.Option(None, help="start from this checkpoint's weights (fine-tuning)"),
    classes: Optional[str] = CLASSES_OPTION,
    labels: Optional[Path] = LABELS_OPTION,
) -> None:
    """Train a zoo model on CIFAR-10 and write a safetensors checkpoint + JSON sidecar."""
    from edgemap.commands.train import run_training
    from edgemap.data.classes import class_names_option
    from edgemap.train.loop import TrainConfig

    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, schedule=schedule, label_smoothing=label_smoothing,
                      weight_decay=weight_decay, norm_bias_decay=norm_bias_decay, seed=seed, threads=threads,
                      jpeg_augment=jpeg_augment, precision=precision, mixup=mixup)
    run_training(model, cfg, data, out, run_dir or out.with_suffix(".run"), limit, " ".join(["edgemap"] + sys.argv[1:]), init,
                 class_names_option(classes, labels))


@app.command("eval")
def eval_cmd(
    checkpoint: Optional[str] = typer.Argument(None, help=MODEL_HELP + "; default: the shipped model"),
    data: Optional[Path] = typer.Option(None, help="CIFAR-10 location, .npz, or image folder; default: $EDGEMAP_CIFAR10 else the shipped sample"),
    split: str = typer.Option("test"),
    confusion: bool = typer.Option(True, help="print the confusion matrix"),
    weights: Optional[Path] = WEIGHTS_OPTION,
    preprocess: Optional[str] = PREPROCESS_OPTION,
    input_shape: Optional[str] = INPUT_SHAPE_OPTION,
    limit: int = typer.Option(0, help="user models: evaluate on a seeded random N images (0: all)"),
    sanity: int = typer.Option(500, help="user models: images in the first sanity check"),
    threads: int = RUNTIME_THREADS_OPTION,
    classes: Optional[str] = CLASSES_OPTION,
    labels: Optional[Path] = LABELS_OPTION,
) -> None:
    """Top-1 accuracy (whole split and exact subset) and the confusion matrix; user models get agreement and sanity checks first."""
    from edgemap.commands.evaluate import eval_command

    eval_command(checkpoint, data, split, confusion, weights, preprocess, input_shape, limit, sanity, threads, classes, labels)


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("out/demo"), help="where the ONNX model, the mapping, its bundle and report go"),
    runs: int = typer.Option(300, help="timed runs per runtime in the comparison table"),
    threads: int = RUNTIME_THREADS_OPTION,
    device: str = DEVICE_OPTION,
    trials: int = typer.Option(10, help="mapping candidates to evaluate"),
    skip_map: bool = typer.Option(False, "--skip-map", help="only the export/parity/latency table"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the table's figures as JSON"),
) -> None:
    """The main job on the built-in default: shipped model -> ONNX -> parity -> ONNX Runtime vs PyTorch,
    then the mapping search onto a device under default constraints (offline)."""
    from edgemap.commands.demo import run_demo
    from edgemap.core.atomic import write_json

    figures = run_demo(out, runs, threads)
    if json_out:
        write_json(json_out, figures)
    if not skip_map:
        from edgemap.commands.map import map_and_report
        from edgemap.search.mapper import MapOptions

        map_and_report(MapOptions(device=device, trials=trials, out_dir=out / "map"))


# Sub-commands contributed by stage modules: each edgemap/commands/<name>.py defines register(app).
# Add a module's name here (one line) to expose its commands.
COMMAND_MODULES: tuple[str, ...] = ("convert", "bench", "devices", "estimate", "compress", "map", "deploy", "runs", "report",
                                   "split")


def _register_stage_commands() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"edgemap.commands.{name}").register(app)


_register_stage_commands()


@app.callback()
def global_options(store: Optional[Path] = typer.Option(None, "--store", help="results store that measuring commands "
                                                       "record into (default $EDGEMAP_STORE, else .edgemap/store.db; 'off': none)"),
                   verbose: bool = typer.Option(False, "--verbose", help="keep third-party libraries' log lines")) -> None:
    """Map deep-learning models onto edge devices."""
    import os

    if store is not None:
        os.environ["EDGEMAP_STORE"] = str(store)


def main() -> None:
    """Entry point: run the app, turning user errors into one line and exit status 2."""
    from edgemap.core.console import setup

    args = setup(sys.argv[1:])  # first: silence third-party noise before anything imports it (unless --verbose)
    try:
        app(args=args, prog_name="edgemap", standalone_mode=False)
    except EdgemapError as exc:
        print(f"edgemap: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        print("edgemap: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # usage errors (typer's own click) carry their message and exit code
        if not (callable(getattr(exc, "format_message", None)) and isinstance(getattr(exc, "exit_code", None), int)):
            raise
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        print(f"edgemap: error: {exc.format_message()}{hint}", file=sys.stderr)
        sys.exit(exc.exit_code)

if __name__ == "__main__":
    main()
