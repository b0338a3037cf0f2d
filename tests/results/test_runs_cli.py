"""`edgemap runs ...` and the recording commands, as a user meets them: subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH_FILES = [ROOT / "benchmarks" / "results" / f"{n}.json" for n in ("compress_int8", "compress_prune_r042_e60", "bench_backends")]


@pytest.fixture
def imported(store_path: Path, cli) -> Path:  # noqa: ANN001
    proc = cli("runs", "import", *map(str, BENCH_FILES), store=store_path)
    assert proc.returncode == 0 and "3 new run(s)" in proc.stdout, proc.stderr
    return store_path


def _ids(edgemap, store: Path) -> list[str]:  # noqa: ANN001
    proc = edgemap("runs", "export", "--format", "csv", store=store)
    return [row["id"] for row in csv.DictReader(io.StringIO(proc.stdout))]


def test_missing_empty_and_bad_stores_are_one_line_errors(tmp_path: Path, cli) -> None:  # noqa: ANN001
    edgemap = cli
    missing = tmp_path / "none.db"
    for args in (("runs", "list"), ("runs", "show", "latest"), ("report",)):
        proc = edgemap(*args, store=missing)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no results store here" in proc.stderr
    assert not missing.exists()  # reading never creates it
    bad = tmp_path / "bad.db"
    bad.write_text("hello")
    proc = edgemap("runs", "list", store=bad)
    assert proc.returncode == 2 and "not an SQLite database" in proc.stderr and bad.read_text() == "hello"
    proc = edgemap("runs", "import", str(BENCH_FILES[0]), store=bad)  # a write is refused just the same
    assert proc.returncode == 2 and bad.read_text() == "hello"


def test_import_is_idempotent_and_list_filters(imported: Path, cli) -> None:  # noqa: ANN001
    edgemap = cli
    again = edgemap("runs", "import", *map(str, BENCH_FILES), store=imported)
    assert "0 new run(s), 3 already stored" in again.stdout
    listed = edgemap("runs", "list", "--command", "benchmark", store=imported)
    assert listed.returncode == 0 and "compress_int8" in listed.stdout and "3 run(s)" in listed.stdout
    none = edgemap("runs", "list", "--device", "no-such-device", store=imported)
    assert none.returncode == 2 and "none of its 3 runs match" in none.stderr
    ranked = edgemap("runs", "list", "--sort", "-drop_points", store=imported).stdout  # worst drop first
    assert ranked.index("compress_prune_r042_e60") < ranked.index("compress_int8") and "bench_backends" not in ranked


def test_show_compare_and_unknown_ids(imported: Path, cli) -> None:  # noqa: ANN001
    edgemap = cli
    a, b, _ = _ids(edgemap, imported)
    shown = edgemap("runs", "show", a, "--json", store=imported)
    run = json.loads(shown.stdout)
    assert run["id"] == a and run["evidence"]["cpu"] and run["payload"]
    cmp = edgemap("runs", "compare", a, b, store=imported)
    assert cmp.returncode == 0 and a in cmp.stdout and b in cmp.stdout and "cpu" in cmp.stdout
    for args in (("runs", "show", "20990101"), ("runs", "compare", a, "nope"), ("report", "nope")):
        proc = edgemap(*args, store=imported)
        assert proc.returncode == 2 and "not found" in proc.stderr and proc.stderr.count("\n") == 1


def test_prune_run_metrics_are_queryable(imported: Path, cli) -> None:  # noqa: ANN001
    edgemap = cli
    from edgemap.results import open_store
    from edgemap.results.queries import RunFilter, list_runs

    [prune] = [r for r in list_runs(open_store(imported), RunFilter(command="benchmark")) if r["label"] == "compress_prune_r042_e60"]
    assert prune["metrics"]["drop_points"] == 1.73 and prune["metrics"]["speedup_int8_pruned_vs_torch_fp32"] == 9.032


def test_export_csv_json_parquet(imported: Path, tmp_path: Path, cli) -> None:  # noqa: ANN001
    edgemap = cli
    rows = list(csv.DictReader(io.StringIO(edgemap("runs", "export", "--format", "csv", store=imported).stdout)))
    assert len(rows) == 3 and {"id", "command", "model"} <= set(rows[0])
    full = json.loads(edgemap("runs", "export", "--format", "json", "--command", "benchmark", store=imported).stdout)
    assert len(full) == 3 and all(r["payload"] and r["metrics"] for r in full)
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "runs.parquet"
    proc = edgemap("runs", "export", "--format", "parquet", "--out", str(out), store=imported)
    assert proc.returncode == 0, proc.stderr
    table = pq.read_table(out)
    assert table.num_rows == 3 and "drop_points" in table.column_names
    for args in (("--format", "xml"), ("--format", "parquet")):
        proc = edgemap("runs", "export", *args, store=imported)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1


def test_eval_and_bench_record_their_runs(store_path: Path, tiny_npz: Path, tmp_path: Path, cli) -> None:  # noqa: ANN001
    edgemap = cli
    from edgemap.convert.onnx_export import export_onnx
    from edgemap.models import zoo

    onnx = export_onnx(zoo.build("tiny"), tmp_path / "tiny.onnx")
    ev = edgemap("eval", "--data", str(tiny_npz), "--no-confusion", store=store_path)
    assert ev.returncode == 0 and "recorded run" in ev.stderr, ev.stderr
    bench = edgemap("--store", str(store_path), "bench", str(onnx), "--runs", "10", "--warmup", "1", "--batch", "1", "--no-cold")
    assert bench.returncode == 0 and "recorded run" in bench.stderr, bench.stderr
    runs = json.loads(edgemap("runs", "export", "--format", "json", store=store_path).stdout)
    by_command = {r["command"]: r for r in runs}
    assert set(by_command) == {"eval", "bench"}
    ev_run, b_run = by_command["eval"], by_command["bench"]
    assert len(ev_run["payload"]["confusion"]) == 10 and ev_run["model_sha256"] and ev_run["evidence"]["cpu"]
    names = {m["name"] for m in b_run["metrics"]}
    assert {"latency_p50_ms", "latency_p99_ms", "size_bytes", "throughput_b1"} <= names
    assert b_run["backend"] == "onnxruntime" and b_run["evidence"]["runs"] == 10 and b_run["model_sha256"]
    from edgemap.results.record import recording_enabled

    assert not recording_enabled("off") and recording_enabled(str(store_path))


def test_a_store_that_cannot_record_warns_and_keeps_the_result(tmp_path: Path, tiny_npz: Path, cli) -> None:  # noqa: ANN001
    edgemap = cli
    bad = tmp_path / "bad.db"
    bad.write_text("not a database")
    proc = edgemap("eval", "--data", str(tiny_npz), "--no-confusion", store=bad)
    assert proc.returncode == 0 and "top-1" in proc.stdout and "warning: run not recorded" in proc.stderr
    assert bad.read_text() == "not a database"
