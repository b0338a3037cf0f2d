"""`edgemap runs export`: runs as CSV (one row per run, its own metrics as columns), JSON (everything) or Parquet."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from edgemap.core.atomic import atomic_path, write_text
from edgemap.errors import EdgemapError
from edgemap.results.queries import RUN_COLUMNS

FORMATS = ("csv", "json", "parquet")


def flat_rows(runs: list[dict]) -> tuple[list[str], list[dict]]:
    """Columns and rows: the run's columns, then metric columns in name order."""
    names = sorted({k for r in runs for k in r["metrics"]})
    rows = [{**{c: r.get(c) for c in RUN_COLUMNS}, **{n: r["metrics"].get(n) for n in names}} for r in runs]
    return list(RUN_COLUMNS) + names, rows


def to_csv(runs: list[dict]) -> str:
    """CSV text with a header row."""
    columns, rows = flat_rows(runs)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_parquet(runs: list[dict], out: Path) -> None:
    """The CSV's table as Parquet (pyarrow)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise EdgemapError("--format parquet needs pyarrow (pip install pyarrow); csv and json need nothing") from None
    columns, rows = flat_rows(runs)
    table = pa.Table.from_pylist(rows, schema=pa.schema(
        [(c, pa.string()) for c in RUN_COLUMNS] + [(c, pa.float64()) for c in columns[len(RUN_COLUMNS):]]))
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp)


def export_runs(runs: list[dict], fmt: str, out: Path | None) -> str | None:
    """Write runs in `fmt` to `out` (atomically), or return the text for stdout (csv/json only)."""
    if fmt not in FORMATS:
        raise EdgemapError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        if out is None:
            raise EdgemapError("--format parquet writes a binary file: give --out FILE.parquet")
        write_parquet(runs, out)
        return None
    text = to_csv(runs) if fmt == "csv" else json.dumps(runs, indent=2, default=str) + "\n"
    if out is None:
        return text
    write_text(out, text)
    return None
