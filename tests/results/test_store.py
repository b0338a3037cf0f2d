"""The SQLite results store: writes, queries, migrations, refusals that leave the file alone, atomicity, concurrency."""

from __future__ import annotations

import multiprocessing as mp
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgemap.errors import EdgemapError
from edgemap.results import Metric, RunRecord, Store, open_store
from edgemap.results import schema
from edgemap.results.queries import RunFilter, count_runs, get_run, list_runs, resolve_run_id

ROOT = Path(__file__).resolve().parents[2]


def run(command: str = "eval", model: str = "m.onnx", **kw) -> RunRecord:
    return RunRecord(command=command, model=model, metrics=[Metric("top1", 88.5, "%"), Metric("latency_p50_ms", 0.2, "ms"),
                                                            Metric("energy_mj", 0.1, "mJ", "estimated")], **kw)


def test_a_recorded_run_comes_back_whole(store_path: Path) -> None:
    s = open_store(store_path)
    [rid] = s.record(run(device="rpi5", backend="onnxruntime", recipe={"passes": []}, evidence={"cpu": "x"},
                         payload={"confusion": [[1]]}, model_sha256="ab" * 32))
    got = get_run(s, rid[:12])
    assert got["id"] == rid and got["device"] == "rpi5" and got["payload"] == {"confusion": [[1]]}
    assert got["edgemap_commit"]  # this checkout's commit
    basis = {m["name"]: m["basis"] for m in got["metrics"]}
    assert basis == {"top1": "measured", "latency_p50_ms": "measured", "energy_mj": "estimated"}
    assert list_runs(s, RunFilter(model="abab"))[0]["metrics"]["top1"] == 88.5  # sha256 prefix finds it


def test_filters_by_model_device_command_and_age(store_path: Path) -> None:
    s = open_store(store_path)
    s.record(run("eval", "a.onnx", device="rpi5"), run("bench", "b.tflite", device="rpi4"),
             run("map", "a.onnx", device="rpi5", created_at="2020-01-01T00:00:00Z"))
    assert {r["command"] for r in list_runs(s, RunFilter(model="a.onnx"))} == {"eval", "map"}
    assert [r["command"] for r in list_runs(s, RunFilter(device="rpi5", since="7d"))] == ["eval"]
    assert len(list_runs(s, RunFilter(since="2019-12-31"))) == 3
    assert list_runs(s, RunFilter(command="train")) == []
    with pytest.raises(EdgemapError, match="--since"):
        list_runs(s, RunFilter(since="last tuesday"))


def test_unknown_and_ambiguous_run_ids_are_one_line_errors(store_path: Path) -> None:
    s = open_store(store_path)
    with pytest.raises(EdgemapError, match="holds no runs"):
        resolve_run_id(s, "latest")
    s.record(run(id="20260101-000000-aaaaaa"), run(id="20260101-000000-aaaaab"))
    with pytest.raises(EdgemapError, match="not found"):
        resolve_run_id(s, "nope")
    with pytest.raises(EdgemapError, match="ambiguous"):
        resolve_run_id(s, "20260101-000000-aaaaa")
    assert resolve_run_id(s, "20260101-000000-aaaaab") == "20260101-000000-aaaaab"


def _bytes(p: Path) -> bytes:
    return p.read_bytes()


@pytest.mark.parametrize("content", [b"just some text, not a database\n", b"\x00" * 10, b"SQLite format 2\x00" + b"x" * 100])
def test_a_file_that_is_not_a_database_is_refused_and_left_unchanged(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "store.db"
    p.write_bytes(content)
    with pytest.raises(EdgemapError, match="not an SQLite database"):
        open_store(p)
    assert _bytes(p) == content


def test_another_tools_sqlite_file_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    p = tmp_path / "study.db"
    with sqlite3.connect(p) as c:
        c.execute("CREATE TABLE studies (id INTEGER)")
    before = _bytes(p)
    with pytest.raises(EdgemapError, match="another tool"):
        open_store(p)
    assert _bytes(p) == before


def test_a_newer_schema_is_refused_and_left_unchanged(store_path: Path) -> None:
    open_store(store_path).record(run())
    with sqlite3.connect(store_path) as c:
        c.execute(f"PRAGMA user_version = {schema.LATEST + 1}")
    before = _bytes(store_path)
    for read_only in (False, True):
        with pytest.raises(EdgemapError, match="newer than this edgemap"):
            Store(store_path, read_only=read_only)
    assert _bytes(store_path) == before


def test_an_old_store_is_migrated_and_keeps_its_runs(store_path: Path) -> None:
    conn = sqlite3.connect(store_path, isolation_level=None)
    for statement in schema.MIGRATIONS[0]:  # a store written by the first schema version
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO runs (id, created_at, command) VALUES ('old-run', '2026-01-01T00:00:00Z', 'eval')")
    conn.close()
    s = open_store(store_path)
    with s.connect() as c:
        assert schema.version(c) == schema.LATEST
    assert get_run(s, "old-run")["group_id"] is None  # the column version 2 added
    s.record(run(group_id="g"))
    assert count_runs(s) == 2


def test_read_only_use_never_creates_a_store(tmp_path: Path) -> None:
    with pytest.raises(EdgemapError, match="no results store here"):
        open_store(tmp_path / "absent.db", read_only=True)
    assert not (tmp_path / "absent.db").exists()


def test_a_failing_write_leaves_no_part_of_the_runs(store_path: Path) -> None:
    s = open_store(store_path)
    s.record(run(id="dup"))
    with pytest.raises(sqlite3.IntegrityError):
        s.record(run(id="fresh"), run(id="dup"))  # the second collides: the first must not stay either
    assert count_runs(s) == 1
    with s.connect() as c:
        assert c.execute("SELECT COUNT(*) FROM metrics WHERE run_id = 'fresh'").fetchone()[0] == 0


def test_a_process_killed_inside_a_write_leaves_no_half_written_run(store_path: Path) -> None:
    open_store(store_path).record(run(id="before"))
    code = textwrap.dedent(f"""
        import os, signal
        from edgemap.results import open_store
        s = open_store({str(store_path)!r})
        with s.connect() as c:
            c.execute("BEGIN IMMEDIATE")
            c.execute("INSERT INTO runs (id, created_at, command) VALUES ('half', 'now', 'eval')")
            c.execute("INSERT INTO metrics (run_id, name, value, basis) VALUES ('half', 'top1', 1, 'measured')")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.returncode == -9
    s = open_store(store_path)
    assert [r["id"] for r in list_runs(s)] == ["before"]
    with s.connect() as c:
        assert c.execute("SELECT COUNT(*) FROM metrics WHERE run_id = 'half'").fetchone()[0] == 0


def _writer(path: str, n: int) -> None:
    s = open_store(path)
    for i in range(n):
        s.record(run(label=f"{os.getpid()}-{i}"))


def test_concurrent_writer_processes_lose_nothing(store_path: Path) -> None:
    open_store(store_path)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(store_path), 15)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    s = open_store(store_path)
    assert count_runs(s) == 60
    with s.connect() as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert c.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 180


def test_an_imported_file_is_stored_once(store_path: Path) -> None:
    s = open_store(store_path)
    first = s.record(run(source="benchmark:x#1"))
    again = s.record(run(source="benchmark:x#1"))
    assert first == again and count_runs(s) == 1


def test_compress_and_convert_results_become_runs_with_before_after(tmp_path: Path) -> None:
    from edgemap.results.builders import compress_run, convert_run

    model = tmp_path / "m.onnx"
    model.write_bytes(b"pruned")
    src = tmp_path / "src.onnx"
    src.write_bytes(b"original")
    report = {"technique": "prune_channels", "config": {"ratio": 0.5}, "output": str(model), "params": [100, 40],
              "macs": [1000, 300], "file_bytes": [400, 160], "accuracy": {"before": {"top1": 88.0, "n": 10},
              "after": {"top1": 86.5, "n": 10}}, "latency": {"before": {"p50_ms": 1.0}, "after": {"p50_ms": 0.4},
              "speedup": 2.5}, "wall_s": 12.0}
    conv = {"path": str(model), "format": "onnx", "precision": "int8", "source": "zoo:tiny", "size_bytes": 160,
            "seconds": 1.5, "parity": {"max_abs_diff": 0.01, "top1_agreement": 0.99, "passed": True}}
    s = open_store(tmp_path / "s.db")
    ids = s.record(compress_run(report, src), convert_run(conv, src))
    comp, convd = get_run(s, ids[0]), get_run(s, ids[1])
    by = {(m["subject"], m["name"]): m["value"] for m in comp["metrics"]}
    assert by[("before", "macs")] == 1000 and by[("after", "top1")] == 86.5 and by[("", "speedup")] == 2.5
    assert comp["parent_sha256"] and comp["model_sha256"] != comp["parent_sha256"]
    assert convd["backend"] == "onnxruntime" and {m["name"] for m in convd["metrics"]} >= {"size_bytes", "top1_agreement"}


def test_a_store_under_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(EdgemapError, match="cannot create the results store's folder"):
        open_store(tmp_path / "f" / "store.db")
