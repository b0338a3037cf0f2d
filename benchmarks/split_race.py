"""The timed requests of split_bench.py: every option of a case run for real through one client and link, in
random round order after an idle gap, screened, then the finalists and the close contenders timed again (race()).

    (imported by benchmarks/split_bench.py; not run on its own)
"""

from __future__ import annotations

import random
import statistics
import time

# ---- settings ----------------------------------------------------------------------------------
SCREEN = 1              # requests per option per case for every feasible option (interleaved)
FINAL = 8               # more requests for each finalist (median of 1 + FINAL), interleaved
FINAL_WITHIN = 1.25     # finalists: screened within this factor of the fastest screened (+ the planner's choice
                        # and the fastest screened device / input / split option)
CONTEND = 1.10          # contenders: finalists whose median after FINAL is within this factor of the fastest ...
EXTRA = 8               # ... get this many more requests each (interleaved), so close ones are told apart
GAP_S = 0.05            # idle before every timed request, as in use and in the overhead calibration: a request right
                        # after another is ~0.2-0.3 ms faster (split_overhead_probe.py), and a fixed order gave the
                        # option after the (100 ms) device option that penalty alone


def _one(client, link, image, choice) -> dict | None:  # noqa: ANN001
    """One timed request: its total and parts (ms), body and wire bytes; None when it failed."""
    time.sleep(GAP_S)
    up0 = link.bytes["up"]
    try:
        r = client.run(image, choice)
    except Exception:  # noqa: BLE001 - counted, not fatal: the benchmark reports failed requests
        return None
    return {"total": r.total_ms, "device": r.device_ms, "encode": r.encode_ms, "network": r.network_ms,
            "server": r.server_ms, "body": r.bytes_up, "wire": link.bytes["up"] - up0}


def summarize_runs(runs: list) -> dict:
    """Median total ms, the timed totals, mean body and wire bytes, median parts, failed requests."""
    ok = [r for r in runs if r is not None]
    med = (lambda k: statistics.median(r[k] for r in ok)) if ok else (lambda k: None)
    return {"median_ms": med("total"), "runs_ms": [round(r["total"], 3) for r in ok],
            "body_bytes": statistics.mean(r["body"] for r in ok) if ok else None,
            "wire_bytes_up": statistics.mean(r["wire"] for r in ok) if ok else None,
            "parts_ms": {k: med(k) for k in ("device", "encode", "network", "server")}, "failures": len(runs) - len(ok)}


def measure(client, link, image_iter, choices: list, n: int) -> list[dict]:  # noqa: ANN001
    """n timed requests of each option, interleaved round by round (machine drift spreads evenly), after one
    warm-up each."""
    for c in choices:
        client.run(next(image_iter), c)
    runs: list[list] = [[] for _ in choices]
    for _ in range(n):
        for j, c in enumerate(choices):
            runs[j].append(_one(client, link, next(image_iter), c))
    return [summarize_runs(r) for r in runs]


def _rounds(client, link, image_iter, choices: dict, labels: list, runs: dict, n: int, rng: random.Random) -> None:  # noqa: ANN001
    """n rounds of one request per label, in a fresh random order each round (no option always follows another)."""
    for _ in range(n):
        for label in rng.sample(labels, len(labels)):
            runs[label].append(_one(client, link, next(image_iter), choices[label]))


def race(client, link, image_iter, opts: list, best, seed: int = 0) -> dict:  # noqa: ANN001 - planner Options
    """Every feasible option run for real: SCREEN request(s) each; then the finalists - every option screened within
    FINAL_WITHIN x the fastest screened, the planner's choice, and the fastest screened all-on-device, all-on-server
    and split option - FINAL more requests each; then the contenders (finalists within CONTEND x the fastest median)
    EXTRA more. Rounds are interleaved in random order, each request after GAP_S idle. A request is never faster than
    its link (RTT + bytes / bandwidth) and its emulated device pad, only slower (load adds), so an option screened at
    > FINAL_WITHIN x the fastest is not the fastest."""
    from edgemap.split.client import Choice

    rng = random.Random(seed)
    choices = {o.label: Choice(o.point, o.encoding, o.quality) for o in opts if o.feasible}
    runs: dict[str, list] = {label: [] for label in choices}
    _rounds(client, link, image_iter, choices, list(choices), runs, SCREEN, rng)
    screen = {k: min((r["total"] for r in v if r), default=float("inf")) for k, v in runs.items()}
    final = {k for k, t in screen.items() if t <= FINAL_WITHIN * min(screen.values())} | {best.label}
    for kind in ("device", "input", "c"):
        of_kind = [k for k in screen if choices[k].point.startswith(kind)]
        if of_kind:
            final.add(min(of_kind, key=screen.get))
    _rounds(client, link, image_iter, choices, [k for k in choices if k in final], runs, FINAL, rng)
    med = {k: summarize_runs(runs[k])["median_ms"] or float("inf") for k in final}
    contenders = [k for k in choices if k in final and med[k] <= CONTEND * min(med.values())]
    if len(contenders) > 1:
        _rounds(client, link, image_iter, choices, contenders, runs, EXTRA, rng)
    return {k: {**summarize_runs(v), "finalist": k in final, "contender": k in contenders} for k, v in runs.items()}


def warm_up(client, image_iter, opts: list) -> None:  # noqa: ANN001
    """Every option once on the fast link (first JPEG/WebP encode loads the codec, a session's first runs are slow)."""
    from edgemap.split.client import Choice

    for o in opts:
        client.run(next(image_iter), Choice(o.point, o.encoding, o.quality))
