"""Read runs, metrics and predictions back out of the store, with the filters `edgemap runs` offers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from edgemap.errors import EdgemapError
from edgemap.results.store import Store

RUN_COLUMNS = ("id", "created_at", "command", "label", "model", "model_sha256", "parent_sha256", "device",
               "backend", "command_line", "edgemap_commit", "group_id", "source")


@dataclass(frozen=True)
class RunFilter:
    """Which runs to list: substring of model (name, path or sha256 prefix), exact device/command/backend,
    and `since` (ISO date/time, or an age such as 7d, 12h, 30m)."""

    model: str | None = None
    device: str | None = None
    command: str | None = None
    backend: str | None = None
    since: str | None = None
    limit: int = 0


def parse_since(text: str | None) -> str | None:
    """'7d' / '12h' / '30m' / '2026-11-30' / '2026-11-30T10:00' -> ISO UTC string comparable with created_at."""
    if not text:
        return None
    m = re.fullmatch(r"(\d+)\s*([dhm])", text.strip())
    if m:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[m.group(2)]
        when = datetime.now(timezone.utc) - timedelta(**{unit: int(m.group(1))})
    else:
        try:
            when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise EdgemapError(f"--since {text!r}: give an age (7d, 12h, 30m) or a date (2026-11-30[T10:00])") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def list_runs(store: Store, flt: RunFilter = RunFilter()) -> list[dict]:
    """Runs matching the filter, newest first, each with its own (subject '') metrics as {name: value}."""
    where, args = [], []
    if flt.model:
        where.append("(model LIKE ? OR model_sha256 LIKE ? OR label LIKE ?)")
        args += [f"%{flt.model}%", f"{flt.model}%", f"%{flt.model}%"]
    for col in ("device", "command", "backend"):
        if getattr(flt, col):
            where.append(f"{col} = ?")
            args.append(getattr(flt, col))
    since = parse_since(flt.since)
    if since:
        where.append("created_at >= ?")
        args.append(since)
    sql = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"
    sql += (" WHERE " + " AND ".join(where)) if where else ""
    sql += " ORDER BY created_at DESC, id DESC" + (f" LIMIT {int(flt.limit)}" if flt.limit else "")
    with store.connect() as conn:
        runs = [dict(r) for r in conn.execute(sql, args)]
        for run in runs:
            run["metrics"] = {r["name"]: r["value"] for r in conn.execute(
                "SELECT name, value FROM metrics WHERE run_id = ? AND subject = '' ORDER BY name", (run["id"],))}
    return runs


def resolve_run_id(store: Store, ref: str) -> str:
    """A full run id or a unique prefix of one (or 'latest'); anything else is a one-line error."""
    with store.connect() as conn:
        if ref == "latest":
            row = conn.execute("SELECT id FROM runs ORDER BY created_at DESC, id DESC LIMIT 1").fetchone()
            if row is None:
                raise EdgemapError(f"{store.path}: the store holds no runs yet")
            return row[0]
        rows = conn.execute("SELECT id FROM runs WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT 3",
                            (len(ref), ref)).fetchall()
    if not rows:
        raise EdgemapError(f"run {ref!r} not found in {store.path} (`edgemap runs list` shows the ids)")
    if len(rows) > 1:
        raise EdgemapError(f"run {ref!r} is ambiguous in {store.path}: {', '.join(r[0] for r in rows)}, ...")
    return rows[0][0]


def get_run(store: Store, ref: str) -> dict:
    """One run with everything: columns, decoded JSON fields and all metrics (with unit, basis, subject)."""
    run_id = resolve_run_id(store, ref)
    with store.connect() as conn:
        run = dict(conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())
        run["metrics"] = [dict(r) for r in conn.execute(
            "SELECT subject, name, value, unit, basis FROM metrics WHERE run_id = ? ORDER BY subject, name", (run_id,))]
    for key in ("recipe", "evidence", "payload"):
        run[key] = json.loads(run[key]) if run[key] else None
    return run


def count_runs(store: Store) -> int:
    """How many runs the store holds."""
    with store.connect() as conn:
        return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


def deployments(store: Store) -> list[dict]:
    """Each bundle that recorded predictions: sha256, deployment name, count, first and last time."""
    with store.connect() as conn:
        return [dict(r) for r in conn.execute(
            "SELECT bundle_sha256, deployment, COUNT(*) AS n, MIN(time) AS first, MAX(time) AS last "
            "FROM predictions GROUP BY bundle_sha256, deployment ORDER BY last DESC")]


def predictions(store: Store, bundle_sha256: str | None = None, since: str | None = None, limit: int = 0) -> list[dict]:
    """A deployment's predictions, oldest first (bundle_sha256 may be a prefix); topk decoded."""
    where, args = [], []
    if bundle_sha256:
        where.append("bundle_sha256 LIKE ?")
        args.append(bundle_sha256 + "%")
    iso = parse_since(since)
    if iso:
        where.append("time >= ?")
        args.append(iso)
    sql = "SELECT * FROM predictions" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
    sql += f" LIMIT {int(limit)}" if limit else ""
    with store.connect() as conn:
        rows = [dict(r) for r in conn.execute(sql, args)]
    for r in rows:
        r["topk"] = json.loads(r["topk"]) if r["topk"] else []
    return rows


def request_errors(store: Store, bundle_sha256: str) -> list[dict]:
    """A deployment's refused requests (status, reason, request id, ...), oldest first (sha256 may be a prefix)."""
    with store.connect() as conn:
        return [dict(r) for r in conn.execute(
            "SELECT * FROM request_errors WHERE bundle_sha256 LIKE ? ORDER BY id", (bundle_sha256 + "%",))]


def latest_benchmarks(store: Store, prefix: str) -> dict[str, dict]:
    """{label: payload} of the newest 'benchmark' run per label starting with `prefix` (a re-measured file is a new
    run; its newest measurement is the one a table shows)."""
    with store.connect() as conn:
        rows = conn.execute("SELECT label, payload FROM runs WHERE command = 'benchmark' AND substr(label, 1, ?) = ? "
                            "ORDER BY created_at, id", (len(prefix), prefix)).fetchall()
    return {label: json.loads(payload) for label, payload in rows if payload}
