"""The pass registry: a config dataclass per technique, found by its type name, plus its function.

A recipe names passes by type (`{type: prune_channels, ratio: 0.5}`); `config_from_dict` turns
that into the frozen, validated config object, and `spec(name).run` is the function that runs it.
Each pass declares the artifact formats it consumes, the format it produces, the precision of
its output, what data it needs and whether it is deterministic (same input + config -> same
bytes), so a recipe is checked and a search space pruned before anything runs.

Source loaders (a checkpoint, an .onnx, a .pt2, an entry point) are registered here too: a
recipe's `model:` entry is turned into the first artifact by the loader whose `matches` accepts it.

Modules register on import; the registry knows only what is loaded. Which modules ship passes is
said by the layer that runs recipes (edgemap.pipeline.loaded), never here: core imports nothing above it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from edgemap.errors import EdgemapError

NEEDS = ("train", "calibration")  # training images (fine-tuning), calibration images (INT8 ranges, parity gates)


@dataclass
class PassSpec:
    """One registered pass.

    run(config, source_path, out_path, ctx) -> CompressionReport; ctx is a PassContext whose `source`
    is the input Artifact. precision: the output's precision ("int8", "fp16"), "config" (the config's
    own `precision` field) or None (the input's).
    """

    type_name: str
    config_cls: type
    consumes: tuple[str, ...]
    produces: str
    needs: tuple[str, ...] = ()
    deterministic: bool = True
    precision: str | None = None
    run: Callable[..., Any] | None = None

    @property
    def needs_data(self) -> bool:
        return bool(self.needs)

    def output_precision(self, cfg: Any, parent: str) -> str:
        if self.precision == "config":
            return str(getattr(cfg, "precision"))
        return self.precision or parent


@dataclass
class SourceSpec:
    """One registered model source: `matches(ref)` says whether it reads the recipe's `model:` entry,
    `load(ref)` returns the first Artifact."""

    kind: str
    produces: str
    matches: Callable[[dict], bool]
    load: Callable[[dict], Any]


_PASSES: dict[str, PassSpec] = {}
_SOURCES: dict[str, SourceSpec] = {}
_LOADER: list[Callable[[], None]] = []
C = TypeVar("C")
F = TypeVar("F", bound=Callable[..., Any])


def register_pass(type_name: str, consumes: str | tuple[str, ...], produces: str, needs_data: bool = False,
                  needs: tuple[str, ...] | None = None, deterministic: bool = True,
                  precision: str | None = None) -> Callable[[type[C]], type[C]]:
    """Class decorator: register a frozen config dataclass under `type_name`, with what it takes and needs.
    needs_data=True without `needs` means training data (the older spelling)."""

    def wrap(cls: type[C]) -> type[C]:
        if type_name in _PASSES:
            raise ValueError(f"pass {type_name!r} registered twice")
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} must be a dataclass")
        want = tuple(needs) if needs is not None else (("train",) if needs_data else ())
        if set(want) - set(NEEDS):
            raise ValueError(f"pass {type_name!r}: unknown needs {want}")
        fmts = (consumes,) if isinstance(consumes, str) else tuple(consumes)
        _PASSES[type_name] = PassSpec(type_name, cls, fmts, produces, want, deterministic, precision)
        cls.type_name = type_name  # type: ignore[attr-defined]
        return cls

    return wrap


def pass_function(config_cls: type) -> Callable[[F], F]:
    """Function decorator: the function that runs passes of `config_cls` in a recipe."""

    def wrap(fn: F) -> F:
        _PASSES[config_cls.type_name].run = fn  # type: ignore[attr-defined]
        return fn

    return wrap


def register_source(kind: str, produces: str, matches: Callable[[dict], bool]) -> Callable[[F], F]:
    """Function decorator: `load(ref) -> Artifact` for recipe `model:` entries that `matches` accepts."""

    def wrap(fn: F) -> F:
        if kind in _SOURCES:
            raise ValueError(f"source {kind!r} registered twice")
        _SOURCES[kind] = SourceSpec(kind, produces, matches, fn)
        return fn

    return wrap


def set_loader(fn: Callable[[], None]) -> None:
    """The higher layer that knows the pass modules says how to import them all (see ensure_loaded)."""
    _LOADER[:] = [fn]


def ensure_loaded() -> None:
    """Import every module that ships passes and sources, so the registries are complete."""
    for fn in _LOADER:  # set by edgemap.pipeline.loaded; before that, only what was imported is known
        fn()


def names() -> list[str]:
    """Registered pass type names."""
    return list(_PASSES)


def sources() -> list[SourceSpec]:
    """Registered model sources."""
    ensure_loaded()
    return list(_SOURCES.values())


def spec(type_name: str) -> PassSpec:
    """The registered pass `type_name`, or a one-line error listing the known ones."""
    if type_name not in _PASSES:
        ensure_loaded()
    if type_name not in _PASSES:
        raise EdgemapError(f"unknown pass type {type_name!r}; known: {', '.join(sorted(_PASSES))}")
    return _PASSES[type_name]


def source_for(ref: object) -> SourceSpec:
    """The source loader that reads a recipe's `model:` entry, or a one-line error."""
    if isinstance(ref, dict):
        for s in sources():
            if s.matches(ref):
                return s
    raise EdgemapError(f"recipe: 'model' must be {{path: FILE}} (.safetensors, .onnx, .pt2), {{entry_point: 'pkg.mod:fn', "
                       f"weights: FILE}} or {{shipped: NAME}}; got {ref!r}")


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
    try:
        return s.config_cls(**args)
    except TypeError as exc:  # a value of the wrong kind that __post_init__ does not catch
        raise EdgemapError(f"pass {s.type_name}: {exc}") from None


def config_to_dict(cfg: Any) -> dict:
    """The recipe entry for a config object (inverse of config_from_dict), every field included."""
    return {"type": type(cfg).type_name, **dataclasses.asdict(cfg)}
