"""`edgemap report`: runs (and a deployment's predictions) from the store as one self-contained HTML file."""

from __future__ import annotations

import time
from pathlib import Path

from edgemap.core.atomic import write_text
from edgemap.errors import EdgemapError
from edgemap.report import sections as S
from edgemap.report.deployment import deployment_sections, refused_section
from edgemap.report.template import TEMPLATE
from edgemap.results import queries
from edgemap.results.store import Store


def model_identity(run: dict) -> str | None:
    """What 'the same model' means across runs: the file's sha256 when known, else its path; the files one
    `edgemap bench` measured side by side (conversions of one model) count as one."""
    if run.get("command") == "bench" and run.get("group_id"):
        return f"bench:{run['group_id']}"
    return run.get("model_sha256") or run.get("model")


def identities(run: dict) -> set[str]:
    """The model and, for a map run, every candidate file it produced (an eval of one of them is the same model)."""
    ident = model_identity(run)
    return ({ident} if ident else set()) | set(((run.get("payload") or {}).get("artifact_sha256") or {}).values())


def check_same_model(runs: list[dict]) -> None:
    """A report covers one model (and what was made from it); runs of different models are refused in one line."""
    family: set[str] = set()
    first = None
    for r in sorted(runs, key=lambda r: r["command"] != "map"):  # a map run knows its children: take it first
        ids = identities(r)
        if not ids:
            continue
        if first is not None and not ids & family:
            raise EdgemapError(f"runs {first['id']} and {r['id']} are of different models ({first.get('model')} vs "
                               f"{r.get('model')}); a report covers one model: report them separately")
        family |= ids
        first = first or r


def run_sections(runs: list[dict]) -> list[dict]:
    """Sections for each kind of run, in the order asked, bench runs together."""
    out, bench = [], [r for r in runs if r["command"] == "bench"]
    for r in runs:
        if r["command"] == "map" or (r["command"] == "benchmark" and "trials" in (r["payload"] or {}) and "objective_key" in r["payload"]):
            out += S.map_sections(r)
        elif r["command"] == "eval":
            out += S.eval_sections(r)
        elif r["command"] != "bench":
            out += S.generic_sections(r)
    if bench:
        out += S.bench_sections(bench)
    return out


def build_report(store: Store, refs: list[str], deployment: str | None = None) -> tuple[str, str]:
    """(title, HTML) for the runs named by `refs` (default: the latest run) and/or a deployment's predictions."""
    if queries.count_runs(store) == 0 and not queries.deployments(store):
        raise EdgemapError(f"{store.path}: the store is empty (no runs or predictions recorded yet)")
    runs = [queries.get_run(store, ref) for ref in refs] if refs or not deployment else []
    if not refs and not deployment:
        runs = [queries.get_run(store, "latest")]
    check_same_model(runs)
    body = run_sections(runs)
    if deployment:
        ref = _bundle_ref(deployment)
        rows, errors = queries.predictions(store, ref), queries.request_errors(store, ref)
        if not rows and not errors:
            raise EdgemapError(f"no predictions recorded for bundle {deployment!r} in {store.path}")
        body += deployment_sections(rows) if rows else []
        body += [refused_section(errors, rows)] if errors else []
    if runs:
        body.append(S.evidence_section(runs))
    model = next((r.get("label") or Path(r["model"]).name for r in runs if r.get("model")), None)
    title = "edgemap report: " + (model or (f"deployment {deployment}" if deployment else "runs"))
    return title, render(title, runs, body)


def _bundle_ref(deployment: str) -> str:
    """A bundle folder becomes its sha256; anything else is taken as a sha256 prefix."""
    if Path(deployment).is_dir():
        from edgemap.results.predictions import bundle_sha256

        return bundle_sha256(deployment)
    return deployment


def render(title: str, runs: list[dict], body: list[dict]) -> str:
    """The HTML text (Jinja2, autoescaped; images are data: URIs, so it opens anywhere without a network)."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["cell"] = _cell
    return env.from_string(TEMPLATE).render(title=title, runs=runs, sections=body,
                                            generated=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"
    return str(value)


def write_report(store: Store, refs: list[str], out: Path, deployment: str | None = None) -> Path:
    """Build and write the report atomically; returns its path."""
    _, text = build_report(store, refs, deployment)
    write_text(out, text)
    return out

