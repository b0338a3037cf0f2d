"""What recording a refused request costs `edgemap serve` on its event loop (in-process, per request).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/serve_refused_cost.py [--calls 5000] [--rounds 5]
    # -> benchmarks/results/serve_refused_cost.json + .md (and the run into the store); ~20 s

A refused prediction request (400/401/413/503...) is handed to the results-store recorder as a dict (status,
reason, request id, path, detail, latency); the recorder appends a row to a buffer under a lock and a writer
thread writes it later. Timed here per call, as the server makes it: the request id (a uuid4 when the client sent
none) + the dict + PredictionRecorder(...). For comparison, the same for a one-image prediction (no thumbnail:
a confident answer). Rounds alternate the two; the writer thread runs meanwhile (as in the server). The machine is
shared with other jobs: the load average is recorded with the figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
RESULTS = ROOT / "benchmarks" / "results"
FLUSH_EVERY = 256  # calls between (untimed) flushes: under the 16 x 64 rows at which the log starts dropping


def time_calls(recorder, bundle: Path, n: int, refused: bool) -> np.ndarray:  # noqa: ANN001 - PredictionRecorder
    """µs per call of what the server does on its loop to record one refused request (or one prediction)."""
    from edgemap.deploy.http_gate import request_id

    pred = {"labels": ["cat", "dog", "ship"], "indices": [3, 5, 8], "probabilities": [0.9, 0.07, 0.03], "top1": "cat"}
    out = np.empty(n)
    for i in range(n):
        if i % FLUSH_EVERY == 0:  # untimed: keep the buffer short, as a server's request rate does, so that every
            for log in list(recorder._logs.values()):  # timed call takes the buffered path, not the drop path
                log.flush()
        t0 = time.perf_counter()
        rid = request_id({})
        if refused:
            recorder({"source": "serve", "bundle": bundle, "status": 400, "reason": "bad_image", "request_id": rid,
                      "path": "/v1/predict", "detail": "not a readable PNG, JPEG or BMP image", "latency_ms": 0.2})
        else:
            recorder({"source": "serve", "time": time.time(), "index": 0, "latency_ms": 3.0, **pred, "bundle": bundle,
                      "request_id": rid, "input": rid, "input_sha256": "0" * 64, "image": None})
        out[i] = time.perf_counter() - t0
    return out * 1e6


def main() -> None:
    from compress_common import write_result_json  # the JSON is an export of the results store
    from edgemap.core.atomic import write_text
    from edgemap.core.evidence import machine_evidence
    from edgemap.deploy.recording import PredictionRecorder
    from serve_load import make_bundle

    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    load_before = [round(x, 2) for x in __import__("os").getloadavg()]
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        bundle = make_bundle(Path(tmp)).resolve()
        recorder = PredictionRecorder(str(bundle), store=str(Path(tmp) / "store.db"), block_when_behind=False)
        recorder.start(bundle)
        for r in range(args.rounds):
            for refused in (True, False):
                us = time_calls(recorder, bundle, args.calls, refused)
                rounds.append({"round": r, "kind": "refused" if refused else "prediction",
                               "p50_us": round(float(np.median(us)), 2), "mean_us": round(float(us.mean()), 2),
                               "p99_us": round(float(np.percentile(us, 99)), 2)})
        recorder.close()
        written = {"refused": recorder.refused, "predictions": recorder.recorded, "dropped": recorder.dropped}
    summary = {kind: {k: [statistics.median(v := [x[k] for x in rounds if x["kind"] == kind]), min(v), max(v)]
                      for k in ("p50_us", "mean_us", "p99_us")} for kind in ("refused", "prediction")}
    record = {"settings": vars(args), "rounds": rounds, "summary": summary, "written": written,
              "load_before": load_before, "evidence": machine_evidence(1)}
    write_result_json(RESULTS / "serve_refused_cost.json", record)
    ev = record["evidence"]
    lines = ["# serve_refused_cost: recording a refused request, on the server's event loop", "",
             f"`PYTHONPATH=$PWD .venv/bin/python benchmarks/serve_refused_cost.py --calls {args.calls} --rounds "
             f"{args.rounds}`", "",
             f"{ev['cpu']} ({', '.join(ev['cpu_flags'])}), {ev['logical_cpus']} logical CPUs, Python "
             f"{ev.get('python')}; load average {load_before} before, {ev.get('load_average')} after "
             "(shared machine: noisy); the store's writer thread runs meanwhile.", "",
             "| per call (request id + dict + recorder) | p50 µs | mean µs | p99 µs |", "|---|---|---|---|"]
    lines += [f"| {kind} (median [min, max] over {args.rounds} rounds of {args.calls:,}) | "
              + " | ".join(str(s[k]) for k in ("p50_us", "mean_us", "p99_us")) + " |" for kind, s in summary.items()]
    lines += ["", f"Rows written: {written['refused']:,} refused requests, {written['predictions']:,} predictions, "
              f"{written['dropped']:,} dropped (the buffer is flushed, untimed, every {FLUSH_EVERY} calls: each timed "
              "call takes the buffered path)."]
    write_text(RESULTS / "serve_refused_cost.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
