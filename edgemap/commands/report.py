"""`edgemap report [RUN ...]`: one self-contained HTML file from the results store."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the `report` command to the CLI."""

    @app.command("report")
    def report_cmd(runs: Optional[List[str]] = typer.Argument(None, help="run ids or unique prefixes (default: the latest run)"),
                   deployment: Optional[str] = typer.Option(None, help="a bundle folder or its sha256 prefix: report its recorded predictions"),
                   out: Path = typer.Option(Path("report.html"), help="HTML file to write"),
                   store: Optional[Path] = typer.Option(None, help="results store (default $EDGEMAP_STORE, else .edgemap/store.db)")) -> None:
        """Plots and tables of runs of one model (Pareto front, per-layer cost, confusion matrix, device fit,
        evidence) and/or a deployment's predictions, as one HTML file with everything embedded."""
        from edgemap.report.html import write_report
        from edgemap.results.store import open_store

        path = write_report(open_store(store, read_only=True), list(runs or []), out, deployment)
        typer.echo(f"report: {path.resolve()}")
