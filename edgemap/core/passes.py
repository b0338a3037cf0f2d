"""The pass registry: a config dataclass per technique, found by its type name, plus its function.

A recipe names passes by type (`{type: prune_channels, ratio: 0.5}`); `config_from_dict` turns
that into the frozen, validated config object, and `handler(config)` gives the function that
runs it. Modules register their passes on import, so the registry only knows what is loaded;
`ensure_loaded()` imports the modules that ship passes.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from edgemap.errors import EdgemapError

# Modules whose import registers passes (heavy: imported only when a recipe needs them).
PASS_MODULES = ("edgemap.compress.prune", "edgemap.compress.sparse", "edgemap.compress.quantize",
                "edgemap.compress.qat", "edgemap.compress.distill", "edgemap.compress.recipe")


@dataclass
class PassSpec:
    """One registered pass: its type name, config class, what it consumes/produces, the function that runs it.

    The function is `run(config, source_path, out_path, ctx) -> CompressionReport`, where ctx is a
    PassContext-like object carrying data sets and options (see edgemap.compress.recipe).
    """

    type_name: str
    config_cls: type
    consumes: str  # "checkpoint" (a torch model) or "onnx"
    produces: str
    needs_data: bool  # training / calibration data
    run: Callable[..., Any] | None = None


_PASSES: dict[str, PassSpec] = {}
C = TypeVar("C")
F = TypeVar("F", bound=Callable[..., Any])


def register_pass(type_name: str, consumes: str, produces: str, needs_data: bool) -> Callable[[type[C]], type[C]]:
    """Class decorator: register a frozen config dataclass under `type_name`, with what it needs."""

    def wrap(cls: type[C]) -> type[C]:
        if type_name in _PASSES:
            raise ValueError(f"pass {type_name!r} registered twice")
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} must be a dataclass")
        _PASSES[type_name] = PassSpec(type_name, cls, consumes, produces, needs_data)
        cls.type_name = type_name  # type: ignore[attr-defined]
        return cls

    return wrap


def pass_function(config_cls: type) -> Callable[[F], F]:
    """Function decorator: the function that runs passes of `config_cls` in a recipe."""

    def wrap(fn: F) -> F:
        _PASSES[config_cls.type_name].run = fn  # type: ignore[attr-defined]
        return fn

    return wrap


def ensure_loaded() -> None:
    """Import every module that ships passes, so the registry is complete."""
    for name in PASS_MODULES:
        importlib.import_module(name)


def names() -> list[str]:
    """Registered pass type names."""
    return list(_PASSES)


def spec(type_name: str) -> PassSpec:
    """The registered pass `type_name`, or a one-line error listing the known ones."""
    if type_name not in _PASSES:
        ensure_loaded()
    if type_name not in _PASSES:
        raise EdgemapError(f"unknown pass type {type_name!r}; known: {', '.join(sorted(_PASSES))}")
    return _PASSES[type_name]


def config_from_dict(d: dict) -> Any:
    """Build a validated config from a recipe entry such as {"type": "prune_channels", "ratio": 0.5}."""
    if not isinstance(d, dict) or "type" not in d:
        raise EdgemapError(f"a pass must be a mapping with a 'type' key, got {d!r}")
    s = spec(str(d["type"]))
    fields = {f.name for f in dataclasses.fields(s.config_cls)}
    args = {k: v for k, v in d.items() if k != "type"}
    unknown = sorted(set(args) - fields)
    if unknown:
        raise EdgemapError(f"pass {s.type_name}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
    for k, v in args.items():  # YAML gives lists where the configs keep tuples (frozen, hashable)
        if isinstance(v, list):
            args[k] = tuple(v)
    return s.config_cls(**args)


def config_to_dict(cfg: Any) -> dict:
    """The recipe entry for a config object (inverse of config_from_dict)."""
    return {"type": type(cfg).type_name, **dataclasses.asdict(cfg)}
