"""serve_load's phases for several server variants, interleaved round by round on this shared machine.

Each round runs every variant once, in turn, each phase against a fresh `edgemap serve` process:
sequential (lone-request overhead), 64 clients batching on, 64 clients batching off, overload at 4x the
rate batching-on sustained in that round. Medians and ranges over rounds are reported per variant, with the
load average before each round (the machine is shared: six jobs on 2 cores).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/serve_variants.py     # ~4 min with the defaults
    SERVE_VARIANTS="h11:asyncio,httptools:uvloop,httptools:uvloop:0,httptools:uvloop:2:2" SERVE_ROUNDS=2 ...
    SERVE_VARIANTS="httptools:asyncio:2:1:1,httptools:asyncio:2:1:2" ...    # `edgemap serve --workers 1` vs 2
    (variant = HTTP:LOOP[:MAX_WAIT_MS[:PROCESSES[:WORKERS]]]; the variant names in the results are these, completed)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import serve_load as sl  # noqa: E402 - the phases, client and server harness of the single-variant benchmark

# HTTP:LOOP[:MAX_WAIT_MS[:PROCESSES[:WORKERS]]]: PROCESSES > 1 starts that many servers and spreads the connections
# over them (the client-side stand-in for --workers that run b measured); WORKERS > 1 is `edgemap serve --workers N`
VARIANTS = [(v.split(":") + ["2", "1", "1"][len(v.split(":")) - 2:])[:5]
            for v in os.environ.get("SERVE_VARIANTS", "h11:asyncio,httptools:uvloop").split(",")]
ROUNDS = int(os.environ.get("SERVE_ROUNDS", "2"))
DURATION_S = float(os.environ.get("SERVE_LOAD_SECONDS", "10"))
SEQUENTIAL = int(os.environ.get("SERVE_SEQUENTIAL", "300"))
OUT = Path(os.environ.get("SERVE_VARIANTS_OUT", Path(__file__).parent / "results" / "serve_variants"))


class Servers:
    """N `edgemap serve` processes seen as one by serve_load's clients: each new connection goes to the next one."""

    def __init__(self, n: int, bundle: Path, *extra: str) -> None:
        self.servers = [sl.Server(bundle, *extra) for _ in range(n)]
        self._next = 0

    @property
    def port(self) -> int:
        self._next += 1
        return self.servers[self._next % len(self.servers)].port

    def cpu_s(self) -> float:
        return sum(s.cpu_s() for s in self.servers)

    def rss_mb(self) -> float:
        return sum(s.rss_mb() for s in self.servers)

    def batches(self) -> dict:
        each = [sl.metrics_batches(s.port) for s in self.servers]
        n = sum(b["batches"] for b in each)
        return {"batches": n, "mean_batch": round(sum(b["batches"] * b["mean_batch"] for b in each) / max(1, n), 2)}

    def stop(self) -> None:
        for s in self.servers:
            s.stop()


def one_variant(bundle: Path, image: np.ndarray, payload: bytes, http: str, loop: str, wait_ms: str = "2",
                procs: str = "1", workers: str = "1") -> dict:
    """The four phases for one variant: the figures the issue asks for."""
    # the same admission bound in all: --max-queue is per worker
    impl = ("--http", http, "--loop", loop, "--workers", workers, "--max-queue", str(sl.MAX_QUEUE // int(workers)))
    batching = ("--max-batch", str(sl.MAX_BATCH), "--max-wait-ms", wait_ms, *impl)
    server = Servers(int(procs), bundle, *batching)
    cpu0 = server.cpu_s()
    lat, bare = asyncio.run(sl.sequential(server.port, payload, SEQUENTIAL, sl.bare_run(bundle, image)))
    seq_cpu = 1000 * (server.cpu_s() - cpu0) / len(lat)
    on = asyncio.run(sl.closed_loop(server, payload, sl.CLIENTS, DURATION_S))
    on.update(server.batches())
    server.stop()
    server = Servers(int(procs), bundle, "--max-batch", "1", *impl)
    off = asyncio.run(sl.closed_loop(server, payload, sl.CLIENTS, DURATION_S))
    server.stop()
    server = Servers(int(procs), bundle, *batching)
    over = asyncio.run(sl.open_loop(server, payload, sl.OVERLOAD * on["ok_per_s"], DURATION_S, sl.OVERLOAD_CONNECTIONS))
    server.stop()
    return {"lone_overhead_ms": round(1000 * (float(np.median(lat)) - float(np.median(bare))), 3),
            "lone_p50_ms": round(1000 * float(np.median(lat)), 3), "lone_server_cpu_ms": round(seq_cpu, 3),
            "on_ok_per_s": on["ok_per_s"], "off_ok_per_s": off["ok_per_s"],
            "on_over_off": round(on["ok_per_s"] / off["ok_per_s"], 2),
            "on_p50_p99_ms": [on["p50_ms"], on["p99_ms"]], "on_mean_batch": on["mean_batch"],
            "cpu_ms_per_request_on_off": [on["server_cpu_ms_per_request"], off["server_cpu_ms_per_request"]],
            "failed_64_clients": on["not_200"] + off["not_200"],
            "overload_offered": over["offered_rate"], "overload_sent": over["sent_rate"],
            "overload_503_share": round(over["codes"].get("503", 0) / max(1, over["requests"]), 3),
            "overload_ok_per_s": over["ok_per_s"], "overload_accepted_p99_from_send_ms": over["from_send"]["p99_ms"],
            "overload_503_p99_from_send_ms": over["from_send"]["busy_p99_ms"],
            "overload_accepted_p99_from_due_ms": over["p99_ms"]}


def summary(runs: list[dict]) -> dict:
    """Median [min, max] over rounds of each numeric figure."""
    out = {}
    for key, value in runs[0].items():
        if isinstance(value, (int, float)):
            vals = [r[key] for r in runs if r[key] is not None]
            out[key] = [round(float(np.median(vals)), 3), min(vals), max(vals)] if vals else None
    return out


def main() -> None:
    from edgemap.core.evidence import machine_evidence
    from edgemap.data.sample import load_sample

    image = load_sample().images[0]
    payload = sl.http_payload(sl.png(image))
    out: dict = {"settings": {"variants": [":".join(v) for v in VARIANTS], "rounds": ROUNDS, "duration_s": DURATION_S,
                              "clients": sl.CLIENTS, "overload": sl.OVERLOAD, "max_batch": sl.MAX_BATCH,
                              "max_queue": sl.MAX_QUEUE, "threads": sl.THREADS, "sequential_requests": SEQUENTIAL},
                 "rounds": []}
    with tempfile.TemporaryDirectory() as tmp:
        bundle = sl.make_bundle(Path(tmp))
        for r in range(ROUNDS):
            for variant in VARIANTS:
                load = os.getloadavg()
                t0 = time.time()
                res = {"round": r, "variant": ":".join(variant), "load_before": [round(x, 2) for x in load],
                       **one_variant(bundle, image, payload, *variant), "seconds": round(time.time() - t0, 1)}
                out["rounds"].append(res)
                print(json.dumps(res), flush=True)
    out["summary"] = {":".join(v): summary([x for x in out["rounds"] if x["variant"] == ":".join(v)]) for v in VARIANTS}
    out["evidence"] = machine_evidence(sl.THREADS)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    from compress_common import write_result_json  # the JSON is an export of the results store

    write_result_json(OUT.with_suffix(".json"), out)
    OUT.with_suffix(".md").write_text(markdown(out))
    print(json.dumps(out["summary"], indent=2))


def markdown(out: dict) -> str:
    ev, st = out["evidence"], out["settings"]
    keys = ["on_over_off", "on_ok_per_s", "off_ok_per_s", "lone_overhead_ms", "lone_server_cpu_ms",
            "overload_503_share", "overload_accepted_p99_from_send_ms", "overload_503_p99_from_send_ms",
            "overload_ok_per_s", "load_before"]
    rows = [f"| {r['variant']} | {r['round']} | " + " | ".join(str(r[k]) for k in keys) + " |" for r in out["rounds"]]
    med = [f"| {v} | median [min, max] | " + " | ".join(str(s.get(k, "")) for k in keys) + " |"
           for v, s in out["summary"].items()]
    return "\n".join([
        "# serve_variants: serve_load's phases per server variant, interleaved", "",
        f"`SERVE_VARIANTS={','.join(st['variants'])} SERVE_ROUNDS={st['rounds']} SERVE_LOAD_SECONDS={st['duration_s']:g} "
        "PYTHONPATH=$PWD .venv/bin/python benchmarks/serve_variants.py`", "",
        f"{ev['cpu']} ({', '.join(ev['cpu_flags'])}), {ev['logical_cpus']} logical CPUs, load average "
        f"{ev.get('load_average')} at the end; onnxruntime {ev['versions'].get('onnxruntime')}; runtime threads "
        f"{st['threads']}; {st['rounds']} rounds x {len(st['variants'])} variants, {st['duration_s']:g} s per phase, "
        f"{st['clients']} clients, overload {st['overload']:g}x on {sl.OVERLOAD_CONNECTIONS} connections; client and "
        "server share the 2 cores with other jobs (noisy: see load_before).", "",
        "| variant | round | " + " | ".join(keys) + " |", "|---" * (len(keys) + 2) + "|", *rows, *med, ""])


if __name__ == "__main__":
    main()
