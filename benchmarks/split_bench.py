"""Edge-cloud split, run for real: head in this process, tail in a `edgemap split serve` process, on
loopback through an emulated link (edgemap.split.shaping) at bandwidths x RTTs.

    EDGEMAP_CIFAR10=/work/shared/data/cifar10 nice -n 5 .venv/bin/python benchmarks/split_bench.py
    # writes benchmarks/results/split_bench.{json,md}

    # one model per run (each <= ~15 min; --rtts 5 / 50,150 halves one), then one merged record:
    flock /work/notes/s3/bench.lock nice -n 5 .venv/bin/python benchmarks/split_bench.py --models resnet9s --out split_bench_resnet9s
    ... --models user / user99 / branch --out split_bench_<model>   [--quiet-load 2 --quiet-wait 60]
    .venv/bin/python benchmarks/split_bench_summary.py split_bench_resnet9s split_bench_user split_bench_branch --out ...

Models: resnet9s (shipped, residual), user (a plain 96x96 CNN given as .onnx, split_user_model.py) under the
top-1 budget, user99 (the same under >= 99 % agreement with the whole model), branch (Inception/DenseNet-style
blocks that fork and concatenate, split_branch_model.py). Per model and (bandwidth, RTT) case the planner
predicts every option, and every feasible option is run for real (race(): one screening request each, then
the finalists 8 more, then the close contenders 8 more; each request after an idle gap, rounds in random
order; the 1-minute load average is recorded per case); the measured fastest is compared with the planner's choice, and every measured option's
predicted latency with its measurement (beside a FLOPs-proportional baseline). Activation bytes are the
HTTP request bodies the client sent (and the link's byte counter, framing included). Then (resnet9s) the
adaptivity step: 100 -> 5 -> 100 Mbps during one run with --adaptive logic, no fallback (a failure would be
counted), once on a clean link and once with jitter and loss.

The device is emulated: the head runs here at full speed, then the client waits (k - 1) x its profiled
median, so the device is k times slower than this host (k set per model so the whole model takes
DEVICE_MS there). The server is this host (one ONNX Runtime thread). Claims are recorded, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# the race's own settings (SCREEN, FINAL, FINAL_WITHIN, CONTEND, EXTRA, GAP_S) are at the top of split_race.py
from split_race import CONTEND, EXTRA, FINAL, FINAL_WITHIN, GAP_S, SCREEN, measure, race, warm_up

# ---- settings ----------------------------------------------------------------------------------
BANDWIDTHS = (1, 2, 5, 10, 20, 50, 100, 1000)   # Mbps
RTTS = (5, 50, 150)                             # ms
DEVICE_MS = 100.0       # emulated device: whole model this long (k = DEVICE_MS / host whole-model median):
                        # a microcontroller-class device, so that RTTs of 50 and 150 ms still leave choices
ADAPT_DEVICE_MS = 10.0  # adaptivity run: a device for which 100 Mbps and 5 Mbps (RTT 5 ms) plan differently
MAX_DROP = 0.5          # accuracy budget, top-1 points (INT8 activations and lossy inputs must fit it)
MIN_AGREEMENT = 99.0    # second budget, user model: % of images answered as the whole model would (fidelity)
ADAPT_PHASE = 15        # requests per bandwidth phase in the adaptivity run
ADAPT_JITTER = (2.0, 0.01)  # second adaptivity run: +-2 ms per chunk each way, 1 % of packets lost (resent after 200 ms)
LIMIT = 1000            # evaluation images (the first 1,000 CIFAR-10 test images are the exact ones)
THREADS = 1             # ONNX Runtime threads on both sides: 2 shared cores
WORK = Path("runs/split_bench")
RESULTS = Path("benchmarks/results")

# ------------------------------------------------------------------------------------------------


def prepare(model: str, preprocess: str | None, data, work: Path) -> tuple:  # noqa: ANN001 - ImageSet
    """Profile (host/host, 1 thread) and export both bundles at every cut."""
    from edgemap.split.bundle import export_bundles
    from edgemap.split.profile import load_or_profile, write_parts
    from edgemap.split.source import resolve_source

    src = resolve_source(model, preprocess, work)
    cuts, parts = write_parts(src, work)
    prof = load_or_profile(src, data, "host", "host", work, threads=THREADS)
    bundles = export_bundles(src, cuts, parts, data.images, prof, work / f"bundles-{src.name}")
    return src, prof, bundles


def start_server(bundle: Path, port: int) -> subprocess.Popen:
    """`edgemap split serve` in its own process; returns once /info answers."""
    import http.client

    proc = subprocess.Popen([sys.executable, "-m", "edgemap.cli", "split", "serve", str(bundle), "--port", str(port),
                             "--threads", str(THREADS)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-500:]}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/info")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not start")


def run_grid(name: str, prof: dict, bundles: dict, data, overhead_ms: float, k_slow: float, port: int,  # noqa: ANN001
             min_agreement: float | None = None) -> list[dict]:
    """Every (bandwidth, RTT) case of one model: predicted options, every feasible option measured (race), choice
    vs measured fastest (among the finalists)."""
    import itertools

    from edgemap.split.client import SplitClient
    from edgemap.split.planner import Network, emulated_device, flops_baseline, plan
    from edgemap.split.shaping import ShapedLink

    dev_prof = emulated_device(prof, k_slow)
    codec_ms = codec_times(dev_prof)
    images = itertools.cycle(list(data.images[:200]))
    rows = []
    with ShapedLink("127.0.0.1", port, 1000, 0) as link:
        client = SplitClient(bundles["edge"], f"http://127.0.0.1:{link.port}", timeout_s=30, threads=THREADS,
                             device_slowdown=k_slow)
        warm_up(client, images, plan(dev_prof, Network(1000, 0, overhead_ms))[0])
        for rtt in RTTS:
            for bw in BANDWIDTHS:
                link.set(bw, rtt)
                load_before = wait_quiet()
                net = Network(bw, rtt, overhead_ms)
                opts, best = plan(dev_prof, net, "latency", MAX_DROP, min_agreement=min_agreement)
                base = flops_baseline(dev_prof, net)
                by_label = {o.label: o for o in opts}
                measured = {k: {"predicted_ms": by_label[k].latency_ms, "flops_baseline_ms": base[k],
                                "predicted_parts_ms": {"device": by_label[k].device_ms, "encode": codec_ms[k][0],
                                                       "decode": codec_ms[k][1], "network": by_label[k].network_ms,
                                                       "server": by_label[k].server_ms},
                                "bytes_predicted": by_label[k].bytes_up, **m}
                            for k, m in race(client, link, images, opts, best, seed=int(bw * 1000 + rtt)).items()}
                rows.append(case_row(name, bw, rtt, best.label, measured))
                r = rows[-1]
                r["load_average"] = {"before": load_before, "after": os.getloadavg()[0]}
                print(f"{name} {bw:>5g} Mbps {rtt:>4g} ms: plan {best.label:<16} measured fastest {r['fastest']:<16} "
                      f"{r['choice_ms'] or float('nan'):.2f} vs {r['fastest_ms']:.2f} ms ({len(measured)} options, load "
                      f"{load_before:.1f} -> {r['load_average']['after']:.1f})", flush=True)
        client.close()
    return rows


QUIET = {"load": None, "wait_s": 0.0}  # --quiet-load/--quiet-wait: before each case, wait for the machine to calm


def wait_quiet() -> float:
    """The 1-minute load average once it is below QUIET['load'] or after QUIET['wait_s'] (other work on the shared
    machine adds to every timing; recorded with each case either way)."""
    deadline = time.monotonic() + QUIET["wait_s"]
    while QUIET["load"] is not None and os.getloadavg()[0] > QUIET["load"] and time.monotonic() < deadline:
        time.sleep(2)
    return os.getloadavg()[0]


def codec_times(prof: dict) -> dict[str, tuple[float, float]]:
    """Per option label: the profile's encode and decode ms (what the planner adds as codec time)."""
    out = {"device": (0.0, 0.0)}
    for row in prof["inputs"]:
        out[f"input/{row['encoding']}" + (f"-q{row['quality']}" if row["quality"] else "")] = (row["encode_ms"], row["decode_ms"])
    for cut in prof["cuts"]:
        out.update({f"{cut['name']}/{e}": (v["encode_ms"], v["decode_ms"]) for e, v in cut["encodings"].items()})
    return out


def case_row(name: str, bw: float, rtt: float, choice: str, measured: dict) -> dict:
    """One case's record: the measured fastest among the finalists (each timed 1 + FINAL times)."""
    ok = {k: v for k, v in measured.items() if v["median_ms"] is not None and v["finalist"]}
    fastest = min(ok, key=lambda k: ok[k]["median_ms"])
    return {"model": name, "bandwidth_mbps": bw, "rtt_ms": rtt, "choice": choice, "fastest": fastest,
            "choice_ms": ok.get(choice, {}).get("median_ms"), "fastest_ms": ok[fastest]["median_ms"], "measured": measured}


CALIBRATION_LINK = (20.0, 5.0)  # Mbps, RTT ms: the fixed per-request cost is measured through a shaped link
CALIBRATION_GAP_S = 0.05  # idle before each calibrated request: in use (and in the grid) a request follows a pause,
                          # and one after a pause takes ~0.2-0.3 ms longer than back-to-back (split_overhead_probe.py)


def http_overhead(bundles: dict, prof: dict, image, port: int, n: int = 45) -> float:  # noqa: ANN001 - uint8 image
    """The planner's fixed per-request cost, ms: what a request of the smallest split takes through a *shaped*
    link beyond the parts the cost model counts (RTT, wire bytes / bandwidth, the tail's profiled median). It
    holds client + server HTTP handling, the server's thread hand-off and the relay's paced wake-ups; measured
    on an unshaped link (before) it missed the last two, and every remote option was under-predicted ~1 ms."""
    from edgemap.split.client import Choice, SplitClient
    from edgemap.split.shaping import ShapedLink

    bw, rtt = CALIBRATION_LINK
    last = prof["cuts"][-1]
    with ShapedLink("127.0.0.1", port, bw, rtt) as link:
        client = SplitClient(bundles["edge"], f"http://127.0.0.1:{link.port}", timeout_s=10, threads=THREADS)
        for _ in range(5):  # warm-up
            client.run(image, Choice(last["name"], "fp32"))
        rest = []
        for _ in range(n):
            time.sleep(CALIBRATION_GAP_S)
            up0, down0 = link.bytes["up"], link.bytes["down"]
            r = client.run(image, Choice(last["name"], "fp32"))
            wire = link.bytes["up"] - up0 + link.bytes["down"] - down0
            rest.append(r.network_ms + r.server_ms - rtt - wire * 8 / (bw * 1e3) - last["tail_server"]["ms"]
                        - last["encodings"]["fp32"]["decode_ms"])
        client.close()
    # the lowest of three batch medians: a burst of load from other work on the machine must not set it
    k = n // 3
    return min(statistics.median(rest[i:i + k]) for i in range(0, 3 * k, k))


def adaptivity(prof: dict, bundles: dict, data, overhead_ms: float, port: int, jitter_ms: float = 0.0,  # noqa: ANN001
               loss: float = 0.0) -> dict:
    """One adaptive run across a 100 -> 5 -> 100 Mbps step at RTT 5 ms (with jitter and loss when given): choices,
    failures, requests to switch."""
    from edgemap.split.adaptive import AdaptiveRunner
    from edgemap.split.client import SplitClient
    from edgemap.split.planner import Network, emulated_device, plan
    from edgemap.split.shaping import ShapedLink

    k = ADAPT_DEVICE_MS / prof["whole"]["device"]["ms"]
    dev_prof = emulated_device(prof, k)
    expected = {bw: plan(dev_prof, Network(bw, 5, overhead_ms), "latency", MAX_DROP)[1].label for bw in (100, 5)}
    log, failures = [], 0
    with ShapedLink("127.0.0.1", port, 100, 5, jitter_ms=jitter_ms, loss=loss) as link:
        client = SplitClient(bundles["edge"], f"http://127.0.0.1:{link.port}", timeout_s=10, threads=THREADS,
                             device_slowdown=k)
        client.profile = dev_prof
        runner = AdaptiveRunner(client, Network(100, 5, overhead_ms), "latency", MAX_DROP)
        for i in range(3 * ADAPT_PHASE):
            bw = 5 if ADAPT_PHASE <= i < 2 * ADAPT_PHASE else 100
            if i % ADAPT_PHASE == 0:
                link.set(bw, 5)
            try:
                r = runner.step(data.images[i])
                log.append({"i": i, "link_mbps": bw, "choice": r.choice, "ran": r.ran, "total_ms": round(r.total_ms, 3),
                            "estimate": r.extra.get("network_estimate")})
            except Exception as exc:  # noqa: BLE001 - a failed request is the figure, not a crash
                failures += 1
                log.append({"i": i, "link_mbps": bw, "error": str(exc)})
        client.close()
        lost = dict(link.lost)

    def settle(start: int, want: str) -> int | None:
        for j in range(start, start + ADAPT_PHASE):
            if all(log[m].get("choice") == want for m in range(j, start + ADAPT_PHASE)):
                return j - start + 1
        return None

    return {"device_ms": ADAPT_DEVICE_MS, "slowdown": k, "jitter_ms": jitter_ms, "loss": loss, "lost_packets": lost,
            "expected_choice": expected, "failures": failures,
            "requests_to_switch": {"100->5": settle(ADAPT_PHASE, expected[5]), "5->100": settle(2 * ADAPT_PHASE, expected[100])},
            "log": log}


def wire_bytes(prof: dict, bundles: dict, data, port: int) -> list[dict]:  # noqa: ANN001
    """Every cut x activation encoding sent 3 times over a fast link: HTTP body and wire bytes per request."""
    import itertools

    from edgemap.split.client import Choice, SplitClient
    from edgemap.split.shaping import ShapedLink

    images = itertools.cycle(list(data.images[:50]))
    rows = []
    with ShapedLink("127.0.0.1", port, 100_000, 0) as link:
        client = SplitClient(bundles["edge"], f"http://127.0.0.1:{link.port}", timeout_s=30, threads=THREADS)
        for cut in prof["cuts"]:
            row = {"point": cut["name"], "op": cut["op"], "nonnegative": cut["nonnegative"], "elements": cut["elements"]}
            encs = ("fp32", "fp16", "int8", "int8-zstd")
            for enc, m in zip(encs, measure(client, link, images, [Choice(cut["name"], e) for e in encs], 3)):
                row[enc] = {"body_bytes": m["body_bytes"], "wire_bytes_up": m["wire_bytes_up"],
                            "top1": cut["encodings"][enc]["top1"], "agreement": cut["encodings"][enc]["agreement"]}
            row["fp32_over_int8"] = row["fp32"]["body_bytes"] / row["int8"]["body_bytes"]
            row["fp32_over_int8_zstd"] = row["fp32"]["body_bytes"] / row["int8-zstd"]["body_bytes"]
            row["int8_drop_points"] = (prof["whole"]["top1"] - cut["encodings"]["int8"]["top1"]) * 100
            rows.append(row)
        client.close()
    return rows


def model_data(name: str, cifar):  # noqa: ANN001, ANN201 - ImageSet -> (model, preprocess, ImageSet, min agreement)
    """What a --models name stands for: the model (zoo name or .onnx), its --preprocess, its evaluation images, and
    the agreement budget of its grid (None: the top-1 budget alone)."""
    if name == "resnet9s":
        return "resnet9s", None, cifar, None
    if name in ("user", "user99"):
        from split_user_model import eval_images, user_model

        (model, pre), data = user_model(WORK), eval_images(cifar)
        return model, pre, data, (MIN_AGREEMENT if name == "user99" else None)
    if name == "branch":
        from split_branch_model import branch_model

        return (*branch_model(WORK), cifar, None)
    raise SystemExit(f"unknown model {name!r}: resnet9s, user, user99, branch")


def main() -> None:
    global BANDWIDTHS, RTTS  # noqa: PLW0603 - the grid is the settings block's, narrowed from the command line
    from compress_common import write_result_json  # the JSON is an export of the results store
    from split_bench_report import markdown
    from split_bench_summary import complete
    from edgemap.core.atomic import write_text
    from edgemap.core.evidence import machine_evidence
    from edgemap.data.resolve import load_eval_data

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet9s", help="comma-separated: resnet9s, user, user99, branch (see above)")
    ap.add_argument("--limit", type=int, default=LIMIT)
    ap.add_argument("--port", type=int, default=8731)
    ap.add_argument("--out", default="split_bench")
    ap.add_argument("--bandwidths", default=",".join(map(str, BANDWIDTHS)), help="Mbps, comma-separated")
    ap.add_argument("--rtts", default=",".join(map(str, RTTS)), help="ms, comma-separated")
    ap.add_argument("--no-adaptivity", action="store_true")
    ap.add_argument("--adaptivity-only", action="store_true", help="resnet9s: only the two adaptivity runs (no grid)")
    ap.add_argument("--quiet-load", type=float, default=None, help="before each case wait until the 1-minute load "
                    "average is below this (at most --quiet-wait s)")
    ap.add_argument("--quiet-wait", type=float, default=60.0)
    args = ap.parse_args()
    QUIET.update(load=args.quiet_load, wait_s=args.quiet_wait)
    BANDWIDTHS = tuple(float(v) for v in args.bandwidths.split(","))
    RTTS = tuple(float(v) for v in args.rtts.split(","))
    cifar = load_eval_data(None).subset(slice(0, args.limit))
    rec = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": " ".join(["python"] + sys.argv),
           "settings": {"bandwidths": BANDWIDTHS, "rtts": RTTS, "device_ms": DEVICE_MS, "max_drop": MAX_DROP, "screen": SCREEN,
                        "final": FINAL, "final_within": FINAL_WITHIN, "contend": CONTEND, "extra": EXTRA,
                        "gap_s": GAP_S, "quiet_load": args.quiet_load, "quiet_wait_s": args.quiet_wait, "threads": THREADS},
           "data": cifar.source, "cases": [], "bytes": {}, "profiles": {}, "overhead_ms": {}}
    for i, name in enumerate(args.models.split(",")):
        model, pre, data, min_agreement = model_data(name, cifar)
        src, prof, bundles = prepare(model, pre, data, WORK)
        label = name if min_agreement is None else f"{name} (agreement >= {min_agreement:g} %)"
        port = args.port + i
        server = start_server(bundles["server"], port)
        try:
            rec["overhead_ms"][label] = overhead = http_overhead(bundles, prof, data.images[0], port)
            k = DEVICE_MS / prof["whole"]["device"]["ms"]
            rec["profiles"][label] = {"slowdown": k, "whole": prof["whole"], "inputs": prof["inputs"],
                                      "cuts": len(prof["cuts"]), "evidence": prof["evidence"]}
            if min_agreement is None and not args.adaptivity_only:
                rec["bytes"][name] = wire_bytes(prof, bundles, data, port)
            if not args.adaptivity_only:
                rec["cases"] += run_grid(label, prof, bundles, data, overhead, k, port, min_agreement)
            if name == "resnet9s" and not args.no_adaptivity:
                rec["adaptivity"] = adaptivity(prof, bundles, data, overhead, port)
                rec["adaptivity_jitter"] = adaptivity(prof, bundles, data, overhead, port, *ADAPT_JITTER)
        finally:
            server.terminate()
            server.wait(timeout=30)
    rec["evidence"] = machine_evidence(THREADS)
    if args.adaptivity_only:
        RESULTS.mkdir(parents=True, exist_ok=True)
        write_result_json(RESULTS / f"{args.out}.json", rec)
        print(json.dumps({k: rec[k]["requests_to_switch"] for k in ("adaptivity", "adaptivity_jitter") if k in rec}))
        return
    complete(rec)
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_result_json(RESULTS / f"{args.out}.json", rec)
    write_text(RESULTS / f"{args.out}.md", markdown(rec))
    print(json.dumps(rec["summary"], indent=1))


if __name__ == "__main__":
    main()
