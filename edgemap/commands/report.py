"""`edgemap report [RUN ...]`: one self-contained HTML file from the results store."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edgemap.commands.options import STORE_OPTION


def register(app: typer.Typer) -> None:
    """Add the `report` command to the CLI."""

    @app.command("report")
    def report_cmd(runs: Optional[List[str]] = typer.Argument(None, help="run ids or unique prefixes, or a map's output "
                                                              "folder / results.json / study.db (imported first); "
                                                              "default: the latest run"),
                   deployment: Optional[str] = typer.Option(None, help="a bundle folder or its sha256 prefix: report "
                                                            "its recorded predictions"),
                   out: Path = typer.Option(Path("report.html"), help="HTML file to write"),
                   store: Optional[Path] = STORE_OPTION) -> None:
        """Plots and tables of runs of one model (Pareto front, per-layer cost, confusion matrix, device fit,
        evidence) and/or a deployment's predictions, as one HTML file with everything embedded."""
        from edgemap.report.html import write_report
        from edgemap.results.store import open_store

        refs = list(runs or [])
        paths = [Path(r) for r in refs if Path(r).exists()]
        if paths:  # a map's output folder or results.json: imported first (idempotent), then reported
            from edgemap.results.importer import import_paths

            s = open_store(store)
            ids = dict(zip(map(str, paths), s.record(*import_paths(paths))))
            refs = [ids.get(r, r) for r in refs]
        path = write_report(open_store(store, read_only=True), refs, out, deployment)
        typer.echo(f"report: {path.resolve()}")
