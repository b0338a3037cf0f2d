"""`edgemap runs list|show|compare|export|import`: the results store from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from edgemap.commands.options import (RUN_BACKEND_FILTER, RUN_COMMAND_FILTER, RUN_DEVICE_FILTER, RUN_MODEL_FILTER,
                                      RUN_SINCE_FILTER, STORE_OPTION)


def register(app: typer.Typer) -> None:
    """Add the `runs` command group to the CLI."""
    runs_app = typer.Typer(help="Query the results store: every recorded run with its metrics and evidence.",
                           no_args_is_help=True)
    app.add_typer(runs_app, name="runs")

    @runs_app.command("list")
    def list_cmd(store: Optional[Path] = STORE_OPTION,
                 model: Optional[str] = RUN_MODEL_FILTER, device: Optional[str] = RUN_DEVICE_FILTER,
                 command: Optional[str] = RUN_COMMAND_FILTER, backend: Optional[str] = RUN_BACKEND_FILTER,
                 since: Optional[str] = RUN_SINCE_FILTER,
                 limit: int = typer.Option(50, help="newest N (0: all)"),
                 sort: Optional[str] = typer.Option(None, help="order by a metric, smallest first ('-accuracy': largest first)")) -> None:
        """Runs, newest first (or by --sort), with their headline figures."""
        print_runs(sort_by_metric(_filtered(store, model, device, command, backend, since, limit), sort), sort)

    @runs_app.command("show")
    def show_cmd(run: str = typer.Argument(..., help="run id, a unique prefix, or 'latest'"),
                 store: Optional[Path] = STORE_OPTION,
                 json_out: bool = typer.Option(False, "--json", help="the whole run as JSON")) -> None:
        """One run: provenance, every metric (measured or estimated) and the evidence."""
        from edgemap.results.queries import get_run
        from edgemap.results.store import open_store

        r = get_run(open_store(store, read_only=True), run)
        if json_out:
            print(json.dumps(r, indent=2, default=str))
        else:
            print_run(r)

    @runs_app.command("compare")
    def compare_cmd(runs: List[str] = typer.Argument(..., help="two or more run ids (or unique prefixes)"),
                    store: Optional[Path] = STORE_OPTION) -> None:
        """Runs side by side: every metric they have, and the evidence that decides whether they compare."""
        from edgemap.errors import EdgemapError
        from edgemap.results.queries import get_run
        from edgemap.results.store import open_store

        if len(runs) < 2:
            raise EdgemapError("compare needs two or more runs")
        s = open_store(store, read_only=True)
        print_comparison([get_run(s, r) for r in runs])

    @runs_app.command("export")
    def export_cmd(fmt: str = typer.Option("csv", "--format", help="csv, json or parquet"),
                   out: Optional[Path] = typer.Option(None, help="file to write (default: stdout; parquet needs it)"),
                   store: Optional[Path] = STORE_OPTION, model: Optional[str] = RUN_MODEL_FILTER,
                   device: Optional[str] = RUN_DEVICE_FILTER, command: Optional[str] = RUN_COMMAND_FILTER,
                   backend: Optional[str] = RUN_BACKEND_FILTER, since: Optional[str] = RUN_SINCE_FILTER,
                   limit: int = typer.Option(0, help="newest N (0: all)")) -> None:
        """Export the filtered runs (json: with payload, evidence and every metric)."""
        from edgemap.results.export import export_runs
        from edgemap.results.queries import get_run
        from edgemap.results.store import open_store

        runs = _filtered(store, model, device, command, backend, since, limit)
        if fmt == "json":
            s = open_store(store, read_only=True)
            runs = [get_run(s, r["id"]) for r in runs]
        text = export_runs(runs, fmt, out)
        if text is not None:
            typer.echo(text, nl=False)
        else:
            typer.echo(f"{len(runs)} run(s) -> {out}", err=True)

    @runs_app.command("import")
    def import_cmd(paths: List[Path] = typer.Argument(..., help="benchmarks/results/*.json files or folders, a map's "
                                                      "results.json, output folder or study.db"),
                   store: Optional[Path] = STORE_OPTION) -> None:
        """Load results files into the store (idempotent: a file already imported is not stored twice)."""
        from edgemap.results.importer import import_paths
        from edgemap.results.store import open_store

        runs = import_paths(paths)
        s = open_store(store)
        ids = s.record(*runs)
        new = len({r.id for r in runs} & set(ids))
        typer.echo(f"{len(runs)} file(s): {new} new run(s), {len(runs) - new} already stored, in {s.path}")


def _filtered(store, model, device, command, backend, since, limit) -> list[dict]:  # noqa: ANN001
    from edgemap.errors import EdgemapError
    from edgemap.results.queries import RunFilter, count_runs, list_runs
    from edgemap.results.store import open_store

    s = open_store(store, read_only=True)
    runs = list_runs(s, RunFilter(model, device, command, backend, since, limit))
    if not runs:
        total = count_runs(s)
        raise EdgemapError(f"{s.path}: the store holds no runs yet" if total == 0 else
                           f"{s.path}: none of its {total} runs match these filters")
    return runs


def _console():  # noqa: ANN202 - rich Console
    """Full width on a terminal; wide enough for whole ids and figures when piped."""
    import sys

    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200)


def sort_by_metric(runs: list[dict], sort: str | None) -> list[dict]:
    """Runs ordered by one of their own metrics; runs without it are left out (a one-line error if none has it)."""
    if not sort:
        return runs
    from edgemap.errors import EdgemapError

    name, reverse = sort.lstrip("-"), sort.startswith("-")
    have = [r for r in runs if r["metrics"].get(name) is not None]
    if not have:
        raise EdgemapError(f"--sort {name}: none of the {len(runs)} matching runs has that metric (`edgemap runs show ID` lists them)")
    return sorted(have, key=lambda r: r["metrics"][name], reverse=reverse)


HEADLINE = ("top1", "accuracy", "accuracy_drop", "drop_points", "latency_ms", "latency_p50_ms", "size_bytes")


def _headline(metrics: dict, first: str | None = None) -> str:
    keys = ([first] if first else []) + [k for k in HEADLINE if k != first]
    shown = [(k, metrics[k]) for k in keys if metrics.get(k) is not None][:3]
    return ", ".join(f"{k} {v:.4g}" for k, v in shown)


def print_runs(runs: list[dict], sort: str | None = None) -> None:
    """A table of runs (id, time, command, label/model, device, backend, headline figures)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"{len(runs)} run(s), " + (f"by {sort}" if sort else "newest first"))
    for col in ("id", "time (UTC)", "command", "label", "device", "backend", "figures"):
        t.add_column(col, overflow="fold")
    for r in runs:
        t.add_row(r["id"], r["created_at"].replace("T", " ").rstrip("Z"), r["command"], escape(r["label"] or Path(r["model"] or "-").name),
                  r["device"] or "-", r["backend"] or "-", _headline(r["metrics"], sort.lstrip("-") if sort else None))
    _console().print(t)


def print_run(r: dict) -> None:
    """Provenance lines, the metrics table (own metrics first, then per subject), the evidence."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    c = _console()
    for key in ("id", "created_at", "command", "command_line", "edgemap_commit", "label", "model", "model_sha256",
                "parent_sha256", "device", "backend", "group_id", "source"):
        if r.get(key):
            c.print(f"[bold]{key}[/]: {escape(str(r[key]))}")
    if r.get("recipe"):
        c.print(f"[bold]recipe[/]: {escape(json.dumps(r['recipe'], default=str))}")
    t = Table(title="metrics")
    for col in ("subject", "metric", "value", "unit", "basis"):
        t.add_column(col, justify="right" if col == "value" else "left")
    for m in r["metrics"]:
        t.add_row(escape(m["subject"] or "(run)"), m["name"], "-" if m["value"] is None else f"{m['value']:.6g}", m["unit"], m["basis"])
    c.print(t)
    if r.get("evidence"):
        c.print(f"[bold]evidence[/]: {escape(json.dumps(r['evidence'], default=str))}")


def print_comparison(runs: list[dict]) -> None:
    """Metric rows x run columns (the run's own metrics), then evidence rows."""
    from rich.console import Console
    from rich.table import Table

    own = [{m["name"]: m for m in r["metrics"] if not m["subject"]} for r in runs]
    names = sorted({n for o in own for n in o})
    t = Table(title="runs side by side (own metrics; basis in brackets when estimated)")
    t.add_column("metric")
    for r in runs:
        t.add_column(f"{r['id']}\n{r['command']} {r.get('label') or ''}", justify="right")
    for n in names:
        cells = []
        for o in own:
            m = o.get(n)
            cells.append("-" if m is None or m["value"] is None else f"{m['value']:.5g}" + (" (est.)" if m["basis"] == "estimated" else ""))
        t.add_row(n, *cells)
    for key in ("cpu", "threads", "load_average", "runs"):
        t.add_row(f"[dim]{key}[/]", *(str((r.get("evidence") or {}).get(key, "-")) for r in runs))
    _console().print(t)


def record_eval(result: dict, model: str | None, threads: int) -> None:
    """Record the evaluation in the results store (one transaction; a store problem is one warning line)."""
    from edgemap.core.evidence import machine_evidence
    from edgemap.models.shipped import shipped_checkpoint
    from edgemap.results.builders import eval_run
    from edgemap.results.record import record_run

    path = model if model is not None and Path(model).exists() else (None if model else shipped_checkpoint())
    backend = "onnxruntime" if (result.get("model") or {}).get("format") == "onnx" else "torch"
    record_run(eval_run(result, path or model, backend=backend, evidence=machine_evidence(threads or None)))
