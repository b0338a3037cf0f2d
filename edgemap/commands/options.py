"""Command-line options that several commands take, declared once (help text and default in one place), and the
options declared from a config dataclass's fields (`field_option`: default and help from the field)."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any

import typer

MODEL_HELP = ("checkpoint (.safetensors), .onnx or .pt2 file (torch.export), or an entry point 'pkg.module:build_fn' / "
              "'file.py:build_fn' with --weights")

WEIGHTS_OPTION = typer.Option(None, help="safetensors weights of an entry-point model")
PREPROCESS_OPTION = typer.Option(None, help="how images become the model's inputs: 'cifar10', "
                                             "'imagenet,resize=224x224,channels=bgr' or a .yaml file (needed for user "
                                             "models; a checkpoint has its own normalisation)")
INPUT_SHAPE_OPTION = typer.Option(None, help="user models: per-sample input shape, e.g. 3,224,224")
CLASSES_OPTION = typer.Option(None, help="the model's output order, e.g. cat,dog,bird (labelled data is relabelled to "
                                          "it by name; data with other class names is refused)")
LABELS_OPTION = typer.Option(None, help="file with one class name per line, in the model's output order (or --classes)")
DEVICE_OPTION = typer.Option("host", help="device profile name or YAML file (see `edgemap devices`)")
RUNTIME_THREADS_OPTION = typer.Option(0, help="runtime threads (0: the library's default)")
STORE_HELP = "results store (default $EDGEMAP_STORE, else .edgemap/store.db)"
STORE_OPTION = typer.Option(None, help=STORE_HELP)
SEED_OPTION = typer.Option(0, help="random seed")

# `edgemap runs list` / `runs export`: which runs
RUN_MODEL_FILTER = typer.Option(None, help="model name, path or sha256 prefix (substring)")
RUN_DEVICE_FILTER = typer.Option(None, help="device profile the run was for")
RUN_COMMAND_FILTER = typer.Option(None, help="eval, bench, train, map, benchmark")
RUN_BACKEND_FILTER = typer.Option(None, help="runtime backend")
RUN_SINCE_FILTER = typer.Option(None, help="7d, 12h or a date")


def field_option(cls: type, name: str) -> Any:
    """The option of dataclass field `cls.name`: its default (a tuple as a comma-separated list) and its help, both
    from the field (metadata 'help'); the flag is --NAME, or --CLI where the metadata names one ('cli')."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
    if isinstance(default, tuple):
        default = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default)
    flag = f"--{f.metadata.get('cli', name).replace('_', '-')}"
    return typer.Option(default, flag, help=f.metadata["help"])  # a bool is a switch: off unless given


def cli_fields(cls: type) -> list[str]:
    """The fields of `cls` that are command-line options (those with a 'help')."""
    return [f.name for f in dataclasses.fields(cls) if "help" in f.metadata]


def field_parameters(cls: type) -> list[inspect.Parameter]:
    """One keyword parameter per option field of `cls` (named as the field, typed for the command line: a tuple
    field takes a comma-separated string), for a command whose signature is derived from the dataclass."""
    hints = typing.get_type_hints(cls)
    params = []
    for name in cli_fields(cls):
        kind = hints[name]
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if typing.get_origin(kind) is tuple or (args and typing.get_origin(args[0]) is tuple):
            kind = str
        elif len(args) == 1:  # X | None
            kind = typing.Optional[args[0]]
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=field_option(cls, name),
                                        annotation=kind))
    return params


def shared_parameters(**options: tuple[Any, Any]) -> list[inspect.Parameter]:
    """Keyword parameters from shared declarations: name=(type, option)."""
    return [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=o, annotation=t) for n, (t, o) in options.items()]
