"""The call `edgemap map` makes at its end: record the run in the store and write OUT/report.html beside results.json."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import yaml

from edgemap.core.atomic import write_text
from edgemap.report import sections as S
from edgemap.report.html import render, run_sections
from edgemap.results.builders import map_run
from edgemap.results.record import record_run
from edgemap.results.records import RunRecord, edgemap_commit, utc_now


def as_stored(run: RunRecord) -> dict:
    """A RunRecord in the shape queries.get_run returns, so a report can be written whether or not it was stored."""
    d = asdict(run)
    d["metrics"] = [{"subject": m.subject, "name": m.name, "value": m.value, "unit": m.unit, "basis": m.basis}
                    for m in run.metrics]
    d["created_at"] = run.created_at or utc_now()
    d["edgemap_commit"] = run.edgemap_commit or edgemap_commit()
    return d


def record_and_report_map(summary: dict, out_dir: str | Path, store: str | None = None) -> Path:
    """Record the map run (its recipe.yaml read back from `summary['recipe']`) and write OUT/report.html.
    Returns the report's path; a store that cannot take the run is a warning, the report is written anyway."""
    out_dir = Path(out_dir)
    recipe_path = Path(summary.get("recipe") or out_dir / "recipe.yaml")
    recipe = yaml.safe_load(recipe_path.read_text()) if recipe_path.is_file() else None
    run = map_run(summary, recipe=recipe)
    record_run(run, store=store)
    stored = as_stored(run)
    body = run_sections([stored]) + [S.evidence_section([stored])]
    path = out_dir / "report.html"
    write_text(path, render(f"edgemap map: {run.label} on {run.device}", [stored], body))
    return path
