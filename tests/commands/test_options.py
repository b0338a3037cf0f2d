"""Options declared once: `edgemap map`'s from MapOptions/Constraints fields, the shared ones (model source, data,
device, store) from edgemap.commands.options, so every command that takes an option says the same thing."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import typer.main

from edgemap.cli import app
from edgemap.commands.map import map_options, map_signature
from edgemap.commands.options import cli_fields
from edgemap.search.constraints import Constraints
from edgemap.search.options import MapOptions

COMMANDS = typer.main.get_command(app)


def _option(command: str, name: str):  # noqa: ANN202 - click.Option
    group = COMMANDS
    for part in command.split():
        group = group.commands[part]
    return next(p for p in group.params if p.name == name)


def test_map_declares_one_option_per_field_with_the_fields_default_and_help():
    params = map_signature().parameters
    for cls in (MapOptions, Constraints):
        for f in dataclasses.fields(cls):
            if "help" in f.metadata:
                assert params[f.name].default.help == f.metadata["help"]
                assert _option("map", f.name).help == f.metadata["help"]
    assert _option("map", "out_dir").opts == ["--out"] and _option("map", "eval_data").opts == ["--data"]
    assert "--calib-samples" in _option("map", "calib_samples").opts  # a field added to MapOptions is an option too
    values = {name: p.default.default for name, p in params.items()}
    assert map_options(values) == MapOptions()  # the command's defaults are the dataclass's


def test_map_parses_lists_by_the_fields_element_type():
    values = {name: p.default.default for name, p in map_signature().parameters.items()}
    opts = map_options({**values, "prune_ratios": "0, 0.25", "threads": "1,4", "backends": "onnxruntime",
                        "max_latency_ms": 2.0, "classes": "b,a"})
    assert opts.prune_ratios == (0.0, 0.25) and opts.threads == (1, 4) and opts.backends == ("onnxruntime",)
    assert opts.constraints == Constraints(max_latency_ms=2.0) and opts.class_names == ("b", "a")


def test_a_bad_list_is_a_one_line_error_before_any_work(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "edgemap.cli", "--store", "off", "map", "--threads", "1,two",
                           "--out", str(tmp_path / "m")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "edgemap: error: --threads must be comma-separated int values, got '1,two'"]
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("name, commands", [
    ("classes", ("train", "eval", "convert", "map")), ("labels", ("train", "eval", "convert", "map")),
    ("preprocess", ("eval", "convert", "map")), ("weights", ("eval", "convert", "map", "estimate")),
    ("device", ("map", "estimate", "demo")), ("threads", ("eval", "demo")),
    ("store", ("runs list", "runs show", "runs compare", "runs export", "runs import", "report")),
    ("since", ("runs list", "runs export")), ("command", ("runs list", "runs export")),
])
def test_an_option_several_commands_take_is_declared_once(name, commands):
    first = _option(commands[0], name)
    for command in commands[1:]:
        other = _option(command, name)
        assert (other.help, other.default, other.opts) == (first.help, first.default, first.opts), command


def test_every_option_field_of_map_options_is_a_cli_field():
    """What the search reads from the command line is exactly MapOptions' option fields plus the shared ones."""
    shared = {"model", "weights", "device", "preprocess", "class_names", "constraints", "progress"}
    assert set(cli_fields(MapOptions)) == {f.name for f in dataclasses.fields(MapOptions)} - shared
