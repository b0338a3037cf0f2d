"""What recording predictions costs `edgemap serve` per request: the same one-image requests with and without it.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/serve_record_cost.py [--requests 400] [--rounds 3]
    # -> benchmarks/results/serve_record_cost.json + .md (and the run into the store); ~2 min

Workload: the shipped CIFAR-10 model as an ONNX Runtime bundle (benchmarks/serve_load.py builds it), one 32 x 32
PNG per request, raw body, one client sending sequential requests on one kept-alive connection (loopback).
Each round starts two fresh servers side by side, one with `--no-record` and one recording into a fresh store,
sends 50 warm-up requests to each, then `--requests` timed ones to each in alternating blocks of 25 (so that
load from other jobs weighs on both alike): client-side latency p50/mean and each server process's CPU time per
request (all its threads: the event loop, the inference thread and the store's
writer thread). In-process, the hook's own cost on the event loop: `PredictionRecorder(payload)` plus the
sha256 of the PNG that the server computes when recording (the writer thread's cost is not in this figure).
Server and client share this machine's cores with other jobs: the load average is recorded with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
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
WARMUP = 50
HOOK_CALLS = 5000
BLOCK = 25  # requests sent to one server before switching to the other


async def sequential(port: int, payload: bytes, n: int) -> list[float]:
    """Latencies (s) of n sequential requests on one kept-alive connection; every answer must be 200."""
    from serve_load import request

    conn: list = []
    out = []
    for _ in range(n):
        status, seconds = await request(port, payload, conn)
        assert status == 200, status
        out.append(seconds)
    return out


def one_round(bundle: Path, payload: bytes, n: int, store: Path) -> dict[bool, dict]:
    """Two fresh servers side by side (--no-record, and recording into `store`), warmed up, then n timed requests
    each, sent in alternating blocks of BLOCK so that the other jobs on this machine weigh on both alike."""
    from serve_load import Server

    os.environ["EDGEMAP_STORE"] = str(store)
    servers = {False: Server(bundle, "--no-record"), True: Server(bundle, "--record")}
    lat: dict[bool, list[float]] = {False: [], True: []}
    cpu = {False: 0.0, True: 0.0}
    try:
        for server in servers.values():
            asyncio.run(sequential(server.port, payload, WARMUP))
        for _ in range(n // BLOCK):
            for record, server in servers.items():
                cpu0 = server.cpu_s()
                lat[record] += asyncio.run(sequential(server.port, payload, BLOCK))
                cpu[record] += server.cpu_s() - cpu0
    finally:
        codes = [server.stop() for server in servers.values()]
    assert codes == [0, 0], codes
    out = {}
    for record, seconds in lat.items():
        ms = np.array(seconds) * 1000
        out[record] = {"p50_ms": float(np.median(ms)), "mean_ms": float(ms.mean()),
                       "p90_ms": float(np.percentile(ms, 90)), "server_cpu_ms_per_request": 1000 * cpu[record] / len(ms)}
    return out


def hook_us(bundle: Path, image: np.ndarray, body: bytes, store: Path) -> dict:
    """Per call, on the calling thread: the sha256 the server adds when recording, and the recorder hook."""
    from edgemap.deploy.edge import EdgeModel
    from edgemap.deploy.recording import PredictionRecorder

    model = EdgeModel(bundle)
    pred = model.classify(image[None], 3)[0].to_dict()
    where = bundle.resolve()
    recorder = PredictionRecorder(str(bundle), store=str(store), block_when_behind=False)
    recorder.start(where)
    t0 = time.perf_counter()
    for _ in range(HOOK_CALLS):
        hashlib.sha256(body).hexdigest()
    sha_us = (time.perf_counter() - t0) / HOOK_CALLS * 1e6
    calls = []
    for i in range(HOOK_CALLS):
        payload = {"source": "serve", "time": time.time(), "index": 0, "latency_ms": 3.0, **pred, "bundle": where,
                   "request_id": f"r{i}", "input": f"r{i}", "input_sha256": "0" * 64, "image": image}
        t = time.perf_counter()
        recorder(payload)
        calls.append(time.perf_counter() - t)
    recorder.close()
    model.close()
    us = np.array(calls) * 1e6
    return {"sha256_png_us": round(sha_us, 2), "hook_p50_us": round(float(np.median(us)), 2),
            "hook_mean_us": round(float(us.mean()), 2), "hook_p99_us": round(float(np.percentile(us, 99)), 2),
            "top1_probability": round(pred["probabilities"][0], 3), "recorded": recorder.recorded}


def summary(phases: list[dict], key: str) -> dict:
    vals = [p[key] for p in phases]
    return {"median": round(statistics.median(vals), 3), "min": round(min(vals), 3), "max": round(max(vals), 3)}


def main() -> None:
    from compress_common import write_result_json  # the JSON is an export of the results store
    from edgemap.core.atomic import write_text
    from edgemap.core.evidence import machine_evidence
    from edgemap.data.sample import load_sample
    from edgemap.results.queries import predictions
    from edgemap.results.store import open_store
    from serve_load import THREADS, http_payload, make_bundle, png

    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    saved_store = os.environ.get("EDGEMAP_STORE")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as d:
        bundle = make_bundle(Path(d))
        image = load_sample().images[0]
        body = png(image)
        phases: dict[bool, list[dict]] = {False: [], True: []}
        for r in range(args.rounds):
            for record, figures in one_round(bundle, http_payload(body), args.requests, Path(d) / f"s{r}.db").items():
                phases[record].append(figures)
        stored = sum(len(predictions(open_store(Path(d) / f"s{r}.db", read_only=True))) for r in range(args.rounds))
        hook = hook_us(bundle, image, body, Path(d) / "hook.db")
    if saved_store is None:
        os.environ.pop("EDGEMAP_STORE", None)
    else:
        os.environ["EDGEMAP_STORE"] = saved_store
    off = {k: summary(phases[False], k) for k in ("p50_ms", "mean_ms", "p90_ms", "server_cpu_ms_per_request")}
    on = {k: summary(phases[True], k) for k in ("p50_ms", "mean_ms", "p90_ms", "server_cpu_ms_per_request")}
    delta = {k: round(statistics.median(b[k] - a[k] for a, b in zip(phases[False], phases[True])), 3)
             for k in ("p50_ms", "mean_ms", "server_cpu_ms_per_request")}
    out = {"command": "python benchmarks/serve_record_cost.py " + " ".join(sys.argv[1:]), "requests": args.requests,
           "rounds": args.rounds, "warmup": WARMUP, "server_threads": THREADS, "record_off": off, "record_on": on,
           "on_minus_off_median_of_rounds": delta, "rows_stored": stored,
           "rows_expected": args.rounds * (args.requests // BLOCK * BLOCK + WARMUP), "hook_on_event_loop": hook,
           "load_average_before": [round(x, 2) for x in load_before],
           "load_average_after": [round(x, 2) for x in os.getloadavg()], "evidence": machine_evidence(THREADS)}
    ev = out["evidence"]
    md = ["# What recording predictions costs `edgemap serve`, per one-image request", "",
          f"`{out['command']}`: {args.rounds} rounds x {args.requests} sequential one-image requests (+{WARMUP} warm-up) "
          f"per server, two servers side by side, recording off (`--no-record`) and on, requests alternating in blocks of "
          f"{BLOCK}; median over rounds (min-max). "
          f"Shared 2-core machine, load average {out['load_average_before']} before, {out['load_average_after']} after: "
          f"noisy; the CPU-time row is less sensitive to other jobs than the latency rows.", "",
          "| | recording off | recording on | on - off (median of rounds) |", "|---|---|---|---|"]
    for k, label in (("p50_ms", "client p50, ms"), ("mean_ms", "client mean, ms"),
                     ("server_cpu_ms_per_request", "server CPU per request, ms (all threads)")):
        md.append(f"| {label} | {off[k]['median']} ({off[k]['min']}-{off[k]['max']}) | {on[k]['median']} "
                  f"({on[k]['min']}-{on[k]['max']}) | {delta[k]:+} |")
    md += ["", f"On the event loop per prediction (in-process, {HOOK_CALLS:,} calls): recorder hook p50 "
           f"{hook['hook_p50_us']} µs (mean {hook['hook_mean_us']}, p99 {hook['hook_p99_us']}) + sha256 of the "
           f"{len(body)}-byte PNG {hook['sha256_png_us']} µs. Rows stored {stored} of {out['rows_expected']} expected.",
           "", f"CPU: {ev['cpu']} ({', '.join(ev['cpu_flags'])}), {ev['logical_cpus']} logical CPUs, Python {ev['python']}, "
           f"onnxruntime {ev['versions'].get('onnxruntime')}, server runtime threads {THREADS}."]
    write_result_json(RESULTS / "serve_record_cost.json", out)
    write_text(RESULTS / "serve_record_cost.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
