"""`edgemap map` (search the best mapping for a device) and `edgemap run` (replay a recipe)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Optional

import typer

from edgemap.commands.options import (CLASSES_OPTION, DEVICE_OPTION, LABELS_OPTION, MODEL_HELP, PREPROCESS_OPTION,
                                      WEIGHTS_OPTION, cli_fields, field_parameters, shared_parameters)
from edgemap.search.constraints import Constraints
from edgemap.search.options import MapOptions

MAP_MODEL_OPTION = typer.Option(None, help=MODEL_HELP + "; default: the shipped model")


def _items(text: str, kind: type, flag: str) -> tuple:
    """A comma-separated option value as a tuple of `kind`."""
    from edgemap.errors import EdgemapError

    try:
        return tuple(kind(v.strip()) for v in text.split(",") if v.strip())
    except ValueError:
        raise EdgemapError(f"--{flag} must be comma-separated {kind.__name__} values, got {text!r}") from None


def map_options(values: dict) -> MapOptions:
    """MapOptions from the map command's parameters, which are named as its fields (and Constraints'): a field whose
    default is a tuple takes a comma-separated list of its elements' type."""
    import dataclasses

    from edgemap.data.classes import class_names_option

    defaults = MapOptions()
    kw = {}
    for name in cli_fields(MapOptions):
        default, value = getattr(defaults, name), values[name]
        kw[name] = _items(value, type(default[0]), name.replace("_", "-")) if isinstance(default, tuple) else value
    cons = Constraints(**{n: values[n] for n in cli_fields(Constraints)})
    return dataclasses.replace(defaults, model=values["model"], weights=values["weights"], device=values["device"],
                               preprocess=values["preprocess"], constraints=cons,
                               class_names=class_names_option(values["classes"], values["labels"]), **kw)


def map_signature() -> inspect.Signature:
    """`edgemap map`'s options: the model and data options every command shares, then one per Constraints and
    MapOptions field (default and help from the field), so an option is declared once, where the search reads it."""
    shared = shared_parameters(model=(Optional[str], MAP_MODEL_OPTION), weights=(Optional[Path], WEIGHTS_OPTION),
                               device=(str, DEVICE_OPTION), preprocess=(Optional[str], PREPROCESS_OPTION),
                               classes=(Optional[str], CLASSES_OPTION), labels=(Optional[Path], LABELS_OPTION))
    return inspect.Signature(shared + field_parameters(Constraints) + field_parameters(MapOptions),
                             return_annotation=None)


def register(app: typer.Typer) -> None:
    """Add `map` and `run` to the CLI."""

    def map_cmd(**values: object) -> None:
        """Search compressions x precisions x backends x threads for the best mapping onto a device."""
        map_and_report(map_options(values))

    map_cmd.__signature__ = map_signature()  # type: ignore[attr-defined]
    app.command("map")(map_cmd)

    @app.command("run")
    def run_cmd(recipe: Path, out: Path = typer.Option(Path("out/run"), help="output folder (pass outputs, bundle)"),
                cache: Optional[Path] = typer.Option(None, help="artifact cache to reuse (e.g. the map's out/map/cache); "
                                                               "default: a fresh OUT/cache, so every pass runs again")) -> None:
        """Rebuild a recipe (as written by `edgemap map`): its passes, evaluation, bundle; compared with what it recorded."""
        from rich.console import Console

        from edgemap.search.replay import run_recipe_file

        r = run_recipe_file(recipe, out, cache)
        _record_replay(r, recipe)
        exact = f", {r['accuracy_exact']:.2f}% on exact images" if r["accuracy_exact"] is not None else ""
        lines = [f"{recipe}: top-1 {r['accuracy']:.2f}%{exact} ({r['data']})"]
        if r["expected_accuracy"] is not None:
            lines.append(f"  recorded top-1 {r['expected_accuracy']:.2f}% (difference {r['accuracy'] - r['expected_accuracy']:+.2f})")
        if r["same_file"] is not None:
            verdict = "same sha256 as the recorded file" if r["same_file"] else (
                "a different file from the recorded one" + ("" if r["deterministic"] else " (a pass is not deterministic: "
                                                            "fine-tuning; compare the accuracy)"))
            lines.append(f"  model: {r['model']} ({verdict})")
        else:
            lines.append(f"  model: {r['model']}")
        lines.append(f"  bundle: {r['bundle']} (self-test top-1 agreement {r['selftest']['top1_agreement']:.3f})")
        Console().print("\n".join(lines))


def map_and_report(opts):  # noqa: ANN001, ANN201 - MapOptions -> SearchSummary
    """`edgemap map` (and `edgemap demo`'s map): the search, then its run recorded in the results store and the
    self-contained OUT/report.html written (a store that cannot take the run is a warning; the report is written)."""
    from dataclasses import replace

    from edgemap.report.map_report import record_and_report_map
    from edgemap.search.mapper import run_map

    summary = run_map(opts)
    summary = replace(summary, report_html=str(record_and_report_map(summary.to_dict(), opts.out_dir)))
    typer.echo(f"  html report: {summary.report_html}")
    return summary


def _record_replay(result: dict, recipe: Path) -> None:
    """`edgemap run` measures the rebuilt model: record it (parent and recipe from the recipe file)."""
    import yaml

    from edgemap.results.builders import replay_run
    from edgemap.results.record import record_run

    from edgemap.core.evidence import machine_evidence

    run = replay_run(result, yaml.safe_load(recipe.read_text()) or {}, recipe)
    run.evidence = machine_evidence()
    record_run(run)
