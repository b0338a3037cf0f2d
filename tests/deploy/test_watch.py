"""`edgemap infer BUNDLE DIR --watch`: images classified as they arrive, results appended, restarts resume."""

import csv
import json
import subprocess
import sys
import threading
import time

from edgemap.data.sample import load_sample
from edgemap.deploy.edge import EdgeModel
from edgemap.deploy.watch import ResultLog, watch_folder
from tests.deploy.test_serve_process import stop_gracefully

IMAGES = load_sample().images[:5]


def test_watch_picks_up_arriving_files_and_skips_broken_writes(bundle, tmp_path, encode):
    drop, out = tmp_path / "drop", tmp_path / "results.jsonl"
    drop.mkdir()
    (drop / "a.png").write_bytes(encode(IMAGES[0]))
    model, log = EdgeModel(bundle), ResultLog(out)
    stop = threading.Event()
    seen = []
    t = threading.Thread(target=watch_folder, args=(model, drop, log), kwargs=dict(
        interval_s=0.05, should_stop=stop.is_set, on_result=seen.append))
    t.start()
    time.sleep(0.5)
    (drop / "b.jpg").write_bytes(encode(IMAGES[1], "JPEG"))
    (drop / ".partial.png").write_bytes(b"hidden: ignored")
    (drop / "notes.txt").write_text("not an image")
    (drop / "broken.png").write_bytes(b"\x89PNG broken")
    time.sleep(0.5)
    stop.set()
    t.join(10)
    log.close()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["file"] for r in rows) == ["a.png", "b.jpg", "broken.png"]
    by = {r["file"]: r for r in rows}
    want = [p.labels[0] for p in model.classify(IMAGES[:2], 1)]
    assert by["a.png"]["top1"] == want[0] and "error" in by["broken.png"]
    assert len(seen) == 3 and all(s["source"] == "watch" for s in seen)


def test_cli_watch_csv_resumes_without_duplicates(bundle, tmp_path, encode, classes):
    drop, out = tmp_path / "drop", tmp_path / "r.csv"
    drop.mkdir()
    for i in range(3):
        (drop / f"{i}.png").write_bytes(encode(IMAGES[i]))
    cmd = [sys.executable, "-m", "edgemap.cli", "infer", str(bundle), str(drop), "--watch", "--out", str(out)]
    subprocess.run(cmd + ["--once"], check=True, capture_output=True, timeout=60)
    (drop / "3.png").write_bytes(encode(IMAGES[3]))
    proc = subprocess.Popen(cmd + ["--interval", "0.1"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while time.time() < deadline and len(out.read_text().splitlines()) < 5:
        time.sleep(0.1)
    stop_gracefully(proc, timeout_s=20)
    rows = list(csv.DictReader(out.open()))
    assert [r["file"] for r in rows] == ["0.png", "1.png", "2.png", "3.png"]
    assert all(r["top1"] in classes and float(r["probability"]) > 0 for r in rows)


def test_watch_needs_out_and_a_folder(bundle, tmp_path):
    r = subprocess.run([sys.executable, "-m", "edgemap.cli", "infer", str(bundle), str(tmp_path), "--watch"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--out" in r.stderr
