"""A deployment's prediction log: batched, thread-safe, bounded by retention, torch-free."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from edgemap.results import open_store
from edgemap.results.predictions import PredictionLog, bundle_sha256
from edgemap.results.queries import deployments, predictions

ROOT = Path(__file__).resolve().parents[2]
SHA = "f" * 64


def add(log: PredictionLog, i: int, p: float = 0.9, image=None) -> None:  # noqa: ANN001
    log.add(["cat", "dog"], [3, 5], [p, 1 - p], source=f"img{i}.png", input_bytes=str(i).encode(), latency_ms=0.5 + i / 100,
            image=image)


def test_rows_are_written_in_batches_and_the_rest_on_close(store_path: Path) -> None:
    log = PredictionLog(SHA, store_path, batch_size=10, flush_interval_s=0)
    for i in range(25):
        add(log, i)
    assert len(predictions(open_store(store_path), SHA)) == 20  # two full batches so far
    log.close()
    rows = predictions(open_store(store_path), SHA[:8])
    assert len(rows) == 25 and rows[0]["source"] == "img0.png" and rows[0]["topk"] == [["cat", 0.9], ["dog", 0.1]]
    assert rows[0]["input_sha256"] != rows[1]["input_sha256"] and rows[0]["top1_index"] == 3
    with pytest.raises(RuntimeError, match="closed"):
        add(log, 99)


def test_the_background_flush_writes_without_close(store_path: Path) -> None:
    log = PredictionLog(SHA, store_path, batch_size=1000, flush_interval_s=0.05)
    add(log, 0)
    for _ in range(100):
        if predictions(open_store(store_path), SHA):
            break
        threading.Event().wait(0.05)
    assert len(predictions(open_store(store_path), SHA)) == 1
    log.close()


def test_retention_keeps_only_the_newest_rows_of_that_bundle(store_path: Path) -> None:
    with PredictionLog("a" * 64, store_path, batch_size=7, flush_interval_s=0, retention=30) as log:
        for i in range(100):
            add(log, i)
    with PredictionLog("b" * 64, store_path, flush_interval_s=0, retention=30) as other:
        add(other, 0)
    rows = predictions(open_store(store_path), "a" * 64)
    assert len(rows) == 30 and rows[-1]["source"] == "img99.png" and rows[0]["source"] == "img70.png"
    assert {d["bundle_sha256"][0]: d["n"] for d in deployments(open_store(store_path))} == {"a": 30, "b": 1}


def test_many_threads_lose_no_prediction(store_path: Path) -> None:
    log = PredictionLog(SHA, store_path, batch_size=16, flush_interval_s=0.01)
    threads = [threading.Thread(target=lambda k=k: [add(log, k * 1000 + i) for i in range(50)]) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    rows = predictions(open_store(store_path), SHA)
    assert len(rows) == 400 and len({r["source"] for r in rows}) == 400


def test_thumbnails_only_for_low_confidence_images(store_path: Path) -> None:
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    with PredictionLog(SHA, store_path, flush_interval_s=0, thumbnail_below=0.5) as log:
        add(log, 0, p=0.9, image=img)
        add(log, 1, p=0.3, image=img)
        add(log, 2, p=0.3, image=img[..., 0])  # grayscale
    rows = predictions(open_store(store_path), SHA)
    assert rows[0]["thumbnail"] is None and rows[1]["thumbnail"].startswith(b"\x89PNG") and rows[2]["thumbnail"]


def test_bundle_identity_is_the_manifest_hash(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    assert bundle_sha256(tmp_path) == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def test_the_whole_results_package_works_without_torch(store_path: Path) -> None:
    code = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('torch', 'torchvision', 'safetensors', 'onnx', 'matplotlib'):
                    raise ModuleNotFoundError(name)
        sys.meta_path.insert(0, Block())
        from edgemap.results import open_store, RunRecord, Metric
        from edgemap.results.predictions import PredictionLog
        from edgemap.results.record import record_run
        from edgemap.results.queries import predictions
        import edgemap.results.builders, edgemap.results.export, edgemap.results.importer, edgemap.results.study
        record_run(RunRecord(command="infer", metrics=[Metric("latency_p50_ms", 1.0, "ms")]), store={str(store_path)!r})
        with PredictionLog("c" * 64, {str(store_path)!r}) as log:
            log.add(["cat"], [3], [0.4], source="x.png")
        assert len(predictions(open_store({str(store_path)!r}))) == 1
        assert "torch" not in sys.modules
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr


def test_open_prediction_log_is_off_or_warns_instead_of_failing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from edgemap.results.predictions import open_prediction_log

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text('{"format": 1}')
    assert open_prediction_log(bundle, store="off") is None
    bad = tmp_path / "bad.db"
    bad.write_text("x")
    assert open_prediction_log(bundle, store=str(bad)) is None and "predictions not recorded" in capsys.readouterr().err
    with open_prediction_log(bundle, store=str(tmp_path / "s.db"), flush_interval_s=0) as log:
        log.add(["cat"], [3], [0.9], source="a.png")
    [dep] = deployments(open_store(tmp_path / "s.db"))
    assert dep["deployment"] == "bundle" and dep["bundle_sha256"] == bundle_sha256(bundle) and dep["n"] == 1
