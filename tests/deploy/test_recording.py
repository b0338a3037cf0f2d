"""Predictions of `edgemap infer`, `infer --watch` and `serve` recorded in the results store (issue 20 x 19):
complete rows, a report over the deployment, `--store off` / `--no-record`, and a store that cannot be used
never failing a prediction."""

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edgemap.data.sample import load_sample
from edgemap.deploy.edge import EdgeModel
from edgemap.deploy.recording import PredictionRecorder
from edgemap.deploy.server import create_app
from edgemap.results import open_store
from edgemap.results.predictions import PredictionLog, bundle_sha256
from edgemap.results.queries import predictions
from tests.deploy.test_serve_process import stop_gracefully

ROOT = Path(__file__).resolve().parents[2]
IMAGES = load_sample().images[:6]
EDGE_CLI = str(Path(__file__).with_name("edge_cli.py"))  # the CLI with torch blocked


def edgemap(*args, store=None) -> subprocess.CompletedProcess:
    """The CLI in a subprocess with torch blocked (the edge half), recording into `store`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if store is not None:
        env["EDGEMAP_STORE"] = str(store)
    return subprocess.run([sys.executable, EDGE_CLI, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.fixture
def image_files(tmp_path, encode):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, im in enumerate(IMAGES[:4]):
        (folder / f"img{i}.{'jpg' if i == 3 else 'png'}").write_bytes(encode(im, "JPEG" if i == 3 else "PNG"))
    return sorted(folder.iterdir())


def test_infer_records_each_file_with_the_bundle_sha_and_hash(bundle, image_files, tmp_path):
    store = tmp_path / "store.db"
    r = edgemap("infer", bundle, *image_files, "--json", store=store)
    assert r.returncode == 0, r.stderr
    assert "torch never imported" in r.stdout and "recorded 4 predictions" in r.stderr
    printed = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    rows = predictions(open_store(store, read_only=True), bundle_sha256(bundle))
    assert [Path(row["source"]).name for row in rows] == [p.name for p in image_files]
    assert all(row["bundle_sha256"] == bundle_sha256(bundle) for row in rows)
    assert [row["input_sha256"] for row in rows] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in image_files]
    assert [row["top1"] for row in rows] == [p["top1"] for p in printed]
    assert [[lb for lb, _ in row["topk"]] for row in rows] == [p["labels"] for p in printed]
    assert all(row["latency_ms"] > 0 for row in rows)
    want = EdgeModel(bundle).classify_files(image_files, 1)
    assert [row["top1_index"] for row in rows] == [p.indices[0] for p in want]


def test_store_off_and_no_record_record_nothing(bundle, image_files, tmp_path):
    store = tmp_path / "store.db"
    r = edgemap("--store", "off", "infer", bundle, image_files[0])
    assert r.returncode == 0 and "recorded" not in r.stderr
    r = edgemap("infer", bundle, image_files[0], "--no-record", store=store)
    assert r.returncode == 0 and r.stdout.startswith(str(image_files[0]))
    assert not store.exists()
    r = edgemap("infer", bundle, image_files[0], store="off")
    assert r.returncode == 0 and not list(tmp_path.glob("*.db")) and not (Path.cwd() / "off").exists()


@pytest.mark.parametrize("kind", ["not_a_database", "folder"])
def test_an_unusable_store_never_fails_a_prediction(bundle, image_files, tmp_path, kind):
    store = tmp_path / "store.db"
    if kind == "folder":
        store.mkdir()
    else:
        store.write_bytes(b"these are somebody's notes, not a database\n")
    before = store.read_bytes() if store.is_file() else None
    r = edgemap("infer", bundle, *image_files[:2], store=store)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 3  # two predictions + the torch line
    warnings = [line for line in r.stderr.splitlines() if line]
    assert len(warnings) == 1 and warnings[0].startswith("edgemap: warning: predictions not recorded:")
    assert (store.read_bytes() if store.is_file() else None) == before  # left as it was


def test_watch_records_what_it_classifies(bundle, tmp_path, encode):
    drop, store = tmp_path / "drop", tmp_path / "store.db"
    drop.mkdir()
    for i in range(3):
        (drop / f"cam{i}.png").write_bytes(encode(IMAGES[i]))
    (drop / "broken.png").write_bytes(b"\x89PNG cut short")
    r = edgemap("infer", bundle, drop, "--watch", "--once", "--out", tmp_path / "r.jsonl", store=store)
    assert r.returncode == 0, r.stderr
    rows = predictions(open_store(store, read_only=True))
    assert sorted(Path(row["source"]).name for row in rows) == ["cam0.png", "cam1.png", "cam2.png"]  # not the error
    assert {row["bundle_sha256"] for row in rows} == {bundle_sha256(bundle)}
    assert all(row["input_sha256"] and row["latency_ms"] > 0 for row in rows)


def test_serve_records_each_prediction_by_request_id_and_the_deployment_report_renders(bundle, encode, tmp_path):
    from edgemap.report.html import build_report

    store = tmp_path / "store.db"
    recorder = PredictionRecorder(str(bundle), store=str(store), block_when_behind=False)
    recorder.start(bundle)
    with TestClient(create_app(bundle, on_result=recorder)) as c:
        r1 = c.post("/v1/predict", content=encode(IMAGES[0]), headers={"content-type": "image/png",
                                                                      "x-request-id": "cam-7:frame.0042"})
        r2 = c.post("/v1/predict", json=IMAGES[1:3].tolist())
        r3 = c.post("/predict", content=encode(IMAGES[3]), headers={"x-request-id": "bad id\twith tab"})
        bad = c.post("/v1/predict", content=b"not an image")
    recorder.close()
    assert [r.status_code for r in (r1, r2, r3, bad)] == [200, 200, 200, 400]
    assert r1.headers["x-request-id"] == r1.json()["request_id"] == "cam-7:frame.0042"
    rid2, rid3 = r2.json()["request_id"], r3.json()["request_id"]
    assert r2.headers["x-request-id"] == rid2 and len(rid3) == 32 and rid3 == r3.headers["x-request-id"]
    rows = predictions(open_store(store, read_only=True), bundle_sha256(bundle))
    assert [row["source"] for row in rows] == ["cam-7:frame.0042", f"{rid2}#0", f"{rid2}#1", rid3]
    assert rows[0]["input_sha256"] == hashlib.sha256(encode(IMAGES[0])).hexdigest()
    assert rows[1]["input_sha256"] == hashlib.sha256(IMAGES[1].tobytes()).hexdigest()  # JSON: its uint8 pixels
    assert [row["top1"] for row in rows] == [p["top1"] for p in r1.json()["predictions"] + r2.json()["predictions"]] \
        + [r3.json()["top1"]]
    assert rows[1]["latency_ms"] == rows[2]["latency_ms"] == r2.json()["latency_ms"]
    assert rows[0]["thumbnail"] is not None  # the tiny model is unsure of everything: thumbnails kept
    title, html = build_report(open_store(store, read_only=True), [], str(bundle))
    assert "4 predictions" in html and html.count("data:image/png;base64") >= 4 and "cam-7:frame.0042" in html
    assert "1 refused requests" in html and "error rate 25.0% of 4 requests" in html


def test_refused_requests_are_recorded_without_images_and_reported_as_an_error_rate(bundle, encode, tmp_path):
    from edgemap.deploy.payload import Limits
    from edgemap.deploy.server import ServeConfig
    from edgemap.report.html import build_report
    from edgemap.results.queries import request_errors

    token = "record-token-0123456789"
    store = tmp_path / "store.db"
    recorder = PredictionRecorder(str(bundle), store=str(store), block_when_behind=False)
    recorder.start(bundle)
    auth = {"Authorization": f"Bearer {token}"}
    config = ServeConfig(token=token, limits=Limits(max_body_bytes=4096))
    with TestClient(create_app(bundle, config, on_result=recorder)) as c:
        ok = c.post("/v1/predict", content=encode(IMAGES[0]), headers=auth)
        refused = [c.post("/v1/predict", content=encode(IMAGES[0]), headers={"x-request-id": "no-token"}),
                   c.post("/v1/predict", content=b"x" * 5000, headers={**auth, "x-request-id": "too-big"}),
                   c.post("/predict", json={"pixels": "nope"}, headers=auth)]
        assert c.get("/metrics").status_code == 401  # not a prediction request: counted, not recorded
    recorder.close()
    assert ok.status_code == 200 and [r.status_code for r in refused] == [401, 413, 400]
    rows = request_errors(open_store(store, read_only=True), bundle_sha256(bundle))
    assert [(e["status"], e["reason"], e["path"]) for e in rows] == [
        (401, "unauthorized", "/v1/predict"), (413, "body_too_large", "/v1/predict"), (400, "bad_json", "/predict")]
    assert [e["request_id"] for e in rows] == [r.headers["x-request-id"] for r in refused]
    assert rows[0]["request_id"] == "no-token" and rows[1]["request_id"] == "too-big" and len(rows[2]["request_id"]) == 32
    assert "image" not in rows[0] and all(e["latency_ms"] >= 0 and e["time"] for e in rows)
    html = build_report(open_store(store, read_only=True), [], str(bundle))[1]
    assert "3 refused requests" in html and "error rate 75.0% of 4 requests" in html and "body_too_large" in html


def test_a_failing_hook_or_store_never_fails_an_answer(bundle, encode, tmp_path, capfd):
    def broken(result):
        raise OSError("disk on fire")

    with TestClient(create_app(bundle, on_result=broken)) as c:
        rs = [c.post("/v1/predict", content=encode(IMAGES[i])) for i in range(2)]
    assert [r.status_code for r in rs] == [200, 200]
    assert capfd.readouterr().err.count("result hook failed") == 1
    recorder = PredictionRecorder(str(bundle), store=str(tmp_path / "s.db"))
    recorder.start(bundle)
    next(iter(recorder._logs.values())).close()  # the log goes away under the recorder (as a dead store would)
    with TestClient(create_app(bundle, on_result=recorder)) as c:
        assert c.post("/v1/predict", content=encode(IMAGES[0])).status_code == 200
        assert c.post("/v1/predict", content=encode(IMAGES[1])).status_code == 200
    recorder.close()
    err = capfd.readouterr().err
    assert err.count("predictions no longer recorded") == 1 and recorder.disabled


def test_a_reload_switches_the_bundle_sha(bundle, tmp_path):
    import shutil

    other = shutil.copytree(bundle, tmp_path / "release2")
    (other / "manifest.json").write_text((other / "manifest.json").read_text() + "\n")  # another release
    store = tmp_path / "store.db"
    recorder = PredictionRecorder("dev/current", store=str(store))
    for i, where in enumerate([bundle, bundle, other, bundle, other]):
        pred = EdgeModel(where).classify(IMAGES[i:i + 1], 3)[0]
        recorder({"bundle": Path(where).resolve(), "input": f"r{i}", "input_sha256": "0" * 64, "latency_ms": 1.0,
                  **pred.to_dict()})
    recorder.close()
    rows = predictions(open_store(store, read_only=True))
    by_sha = {sha: [r["source"] for r in rows if r["bundle_sha256"] == sha]
              for sha in (bundle_sha256(bundle), bundle_sha256(other))}
    assert by_sha == {bundle_sha256(bundle): ["r0", "r1", "r3"], bundle_sha256(other): ["r2", "r4"]}
    assert {r["deployment"] for r in rows} == {"dev/current"}


def test_a_locked_store_drops_rows_rather_than_stall_the_server(tmp_path):
    store = open_store(tmp_path / "store.db")
    holder = sqlite3.connect(store.path, timeout=1, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the store
    log = PredictionLog("a" * 64, store, batch_size=2, flush_interval_s=0.05, block_when_behind=False)
    t0 = time.perf_counter()
    for i in range(100):
        log.add(["cat", "dog"], [3, 5], [0.9, 0.1], source=f"r{i}", input_sha256="0" * 64, latency_ms=1.0)
    assert time.perf_counter() - t0 < 1.0  # no add waited for the lock
    assert log.dropped > 0 and log.added + log.dropped == 100
    threading.Timer(0.2, holder.execute, args=("COMMIT",)).start()
    log.close()
    assert len(predictions(open_store(tmp_path / "store.db", read_only=True))) == log.added


def start_serve(target, store):  # noqa: ANN001, ANN201 - (process, port)
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EDGEMAP_STORE": str(store)}
    proc = subprocess.Popen([sys.executable, EDGE_CLI, "serve", str(target), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 60
    while True:
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1]
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2)
            return proc, port
        except OSError:
            time.sleep(0.2)


def post(port: int, body: bytes, rid: str) -> dict:
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/predict", data=body, headers={"X-Request-ID": rid})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_serve_process_writes_its_buffered_rows_on_sigterm(bundle, encode, tmp_path):
    store = tmp_path / "store.db"
    proc, port = start_serve(bundle, store)
    try:
        ids = [post(port, encode(IMAGES[i]), f"req-{i}")["request_id"] for i in range(3)]
        out, err = stop_gracefully(proc)  # within the 2 s flush interval: the rows are still buffered
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "torch never imported" in out, err
    assert ids == ["req-0", "req-1", "req-2"] and "recorded 3 predictions" in err
    rows = predictions(open_store(store, read_only=True), bundle_sha256(bundle))
    assert [r["source"] for r in rows] == ids and all(r["latency_ms"] > 0 for r in rows)


def test_sighup_reload_records_under_the_new_bundle_sha(bundle, encode, tmp_path):
    import shutil
    import signal
    import urllib.request

    from edgemap.deploy.install import install

    second = shutil.copytree(bundle, tmp_path / "second")
    (second / "manifest.json").write_text((second / "manifest.json").read_text() + "\n")  # a new release
    dev, store = tmp_path / "dev", tmp_path / "store.db"
    first = install(bundle, dev)
    proc, port = start_serve(dev / "current", store)
    try:
        post(port, encode(IMAGES[0]), "before")
        release = install(second, dev)["release"]
        proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 30
        while not json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/model", timeout=10).read()
                             )["loaded_from"].endswith(release):
            assert time.time() < deadline, "no reload"
            time.sleep(0.2)
        post(port, encode(IMAGES[1]), "after")
        stop_gracefully(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    rows = predictions(open_store(store, read_only=True))
    assert [(r["source"], r["bundle_sha256"]) for r in rows] == [("before", bundle_sha256(bundle)),
                                                                 ("after", bundle_sha256(second))]
    assert {r["deployment"] for r in rows} == {str((dev / "current").absolute())} and first["release"] != release


def test_retention_keeps_the_latest_predictions(bundle, image_files, tmp_path):
    store = tmp_path / "store.db"
    for _ in range(2):
        assert edgemap("infer", bundle, *image_files, "--retention", "3", store=store).returncode == 0
    rows = predictions(open_store(store, read_only=True))
    assert [Path(r["source"]).name for r in rows] == [p.name for p in image_files[-3:]]
    r = edgemap("infer", bundle, image_files[0], "--retention", "0", store=store)
    assert r.returncode == 2 and r.stderr.startswith("edgemap: error: --retention must be >= 1")
