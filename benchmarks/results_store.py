"""What recording costs: the results store and a deployment's prediction log, on this host.

    .venv/bin/python benchmarks/results_store.py [--predictions 20000] [--rounds 5]
    # -> benchmarks/results/results_store.json + .md (and the run into the store)

Per prediction: the time the predicting thread spends in `PredictionLog.add` and the time until every row is
on disk (batched, 64 rows per transaction, written by the log's thread; with and without a low-confidence
thumbnail), from one thread and from 4 threads at once; per run: `Store.record` of a run with 20 metrics;
reads: `runs list` over 1,000 runs, a deployment's predictions, and a deployment report. Median of `rounds`
rounds, each in a fresh store in a temporary folder (tmpfs or disk: the figure says which filesystem).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"


def per_prediction_us(store_dir: Path, n: int, threads: int, image) -> tuple[float, float]:  # noqa: ANN001
    """(µs the predicting threads spend in add(), µs per prediction until all are on disk after close())."""
    from edgemap.results.predictions import PredictionLog

    log = PredictionLog("a" * 64, store_dir / "s.db", flush_interval_s=2.0, retention=10 * n, thumbnail_below=1.1)
    per = n // threads

    def work(k: int) -> None:
        for i in range(per):
            log.add(["cat", "dog", "ship"], [3, 5, 8], [0.6, 0.3, 0.1], source=f"{k}/{i}.png", input_bytes=b"%d" % i,
                    latency_ms=0.5, image=image)

    t0 = time.perf_counter()
    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    added = time.perf_counter() - t0
    log.close()
    return added / per * 1e6, (time.perf_counter() - t0) / (per * threads) * 1e6


def record_run_ms(store_dir: Path, n: int = 200) -> tuple[float, float, float]:
    """(median ms per recorded run, ms for `runs list` over 1,000 runs, store bytes after them)."""
    from edgemap.results import Metric, RunRecord, open_store
    from edgemap.results.queries import RunFilter, list_runs

    s = open_store(store_dir / "r.db")
    times = []
    for i in range(1000):
        run = RunRecord(command="bench", model=f"m{i % 7}.onnx", metrics=[Metric(f"m{j}", j * 1.5, "ms") for j in range(20)],
                        evidence={"cpu": "x", "load_average": [1, 2, 3]}, payload={"i": i, "latency": list(range(50))})
        t0 = time.perf_counter()
        s.record(run)
        if i < n:
            times.append((time.perf_counter() - t0) * 1e3)
    t0 = time.perf_counter()
    list_runs(s, RunFilter(limit=0))
    return statistics.median(times), (time.perf_counter() - t0) * 1e3, (store_dir / "r.db").stat().st_size


def read_side(store_dir: Path) -> dict:
    """Query a deployment's predictions and build its report (the store from per_prediction_us)."""
    from edgemap.report.html import build_report
    from edgemap.results import open_store
    from edgemap.results.queries import predictions

    s = open_store(store_dir / "s.db", read_only=True)
    t0 = time.perf_counter()
    rows = predictions(s, "a" * 8)
    q = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_report(s, [], deployment="a" * 8)
    return {"rows": len(rows), "query_ms": round(q * 1e3, 1), "report_s": round(time.perf_counter() - t0, 2),
            "store_bytes": (store_dir / "s.db").stat().st_size}


def fs_type(path: Path) -> str:
    best = ("?", "")
    for line in Path("/proc/mounts").read_text().splitlines():
        dev, mnt, fs = line.split()[:3]
        if str(path.resolve()).startswith(mnt) and len(mnt) >= len(best[1]):
            best = (fs, mnt)
    return best[0]


def main() -> None:
    from edgemap.core.atomic import write_text
    from compress_common import write_result_json  # the JSON is an export of the results store
    from edgemap.core.evidence import machine_evidence

    ap = argparse.ArgumentParser()
    ap.add_argument("--predictions", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    cases = {"1 thread": (1, None), "4 threads": (4, None), "1 thread + thumbnail": (1, img)}
    us = {k: [] for k in cases}
    in_add = {k: [] for k in cases}
    runs, reads = [], []
    for _ in range(args.rounds):
        for name, (threads, image) in cases.items():
            with tempfile.TemporaryDirectory() as d:
                n = args.predictions if image is None else args.predictions // 10
                caller, total = per_prediction_us(Path(d), n, threads, image)
                in_add[name].append(caller)
                us[name].append(total)
                if name == "1 thread":
                    reads.append(read_side(Path(d)))
        with tempfile.TemporaryDirectory() as d:
            runs.append(record_run_ms(Path(d)))
    tmp_fs = fs_type(Path(tempfile.gettempdir()))
    out = {"command": "python benchmarks/results_store.py " + " ".join(sys.argv[1:]), "predictions": args.predictions,
           "rounds": args.rounds, "filesystem": tmp_fs,
           "us_per_prediction": {k: {"median": round(statistics.median(v), 2), "min": round(min(v), 2), "max": round(max(v), 2)}
                                 for k, v in us.items()},
           "us_in_add_per_prediction": {k: {"median": round(statistics.median(v), 2), "min": round(min(v), 2),
                                            "max": round(max(v), 2)} for k, v in in_add.items()},
           "record_run_ms_median": round(statistics.median(r[0] for r in runs), 3),
           "list_1000_runs_ms_median": round(statistics.median(r[1] for r in runs), 1),
           "store_bytes_1000_runs": runs[-1][2], "deployment_read": reads[-1],
           "deployment_report_s_median": statistics.median(r["report_s"] for r in reads),
           "evidence": machine_evidence()}
    md = ["# What recording costs (results store, prediction log)", "", f"`{out['command']}`; {args.rounds} rounds, "
          f"fresh store each in {tempfile.gettempdir()} ({tmp_fs}); median (min-max). Shared machine: other jobs ran "
          f"(load average {out['evidence'].get('load_average')}), so these are upper bounds.", "",
          "| what | figure |", "|---|---|"]
    md += [f"| `PredictionLog.add`, {k} | {out['us_in_add_per_prediction'][k]['median']} µs in `add` per prediction per thread "
           f"({out['us_in_add_per_prediction'][k]['min']}-{out['us_in_add_per_prediction'][k]['max']}); {v['median']} µs per "
           f"prediction until all are on disk ({v['min']}-{v['max']}) |" for k, v in out["us_per_prediction"].items()]
    md += [f"| `Store.record`, one run with 20 metrics | {out['record_run_ms_median']} ms |",
           f"| `runs list` over 1,000 runs | {out['list_1000_runs_ms_median']} ms; store {out['store_bytes_1000_runs'] / 1e6:.2f} MB |",
           f"| {args.predictions:,} predictions stored | {out['deployment_read']['store_bytes'] / 1e6:.2f} MB; read back in "
           f"{out['deployment_read']['query_ms']} ms; deployment report {out['deployment_report_s_median']} s |",
           "", f"CPU: {out['evidence']['cpu']} ({', '.join(out['evidence']['cpu_flags'])}), Python {out['evidence']['python']}."]
    write_result_json(RESULTS / "results_store.json", out)
    write_text(RESULTS / "results_store.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
