"""Where a remote request's time goes beyond the split cost model's parts (issue 21 follow-up): through the
emulated link, the residual = wall time - RTT - wire bytes (framing included) / bandwidth, per body size
(POST /probe, no compute), on an unshaped and two shaped links; and for the smallest split request, the
residual after one more idle gap (a request after a pause, as in split_bench's interleaving, vs back-to-back).

    EDGEMAP_CIFAR10=/work/shared/data/cifar10 nice -n 5 .venv/bin/python benchmarks/split_overhead_probe.py
    # writes benchmarks/results/split_overhead_probe.json
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

SIZES = (40, 1000, 2265, 3072, 4000, 4096, 8192, 12239, 16384, 27648)  # B: PNG / raw bodies of both models among them
LINKS = ((100_000, 0), (20, 5), (5, 5))  # Mbps, RTT ms
ROUNDS = 15
PORT = 8794


def _stats(v: list[float]) -> dict:
    return {"median_ms": round(statistics.median(v), 3), "min_ms": round(min(v), 3), "max_ms": round(max(v), 3)}


def body_sizes() -> dict:
    from edgemap.split.client import Remote
    from edgemap.split.shaping import ShapedLink

    out = {}
    for bw, rtt in LINKS:
        with ShapedLink("127.0.0.1", PORT, bw, rtt) as link:
            rem, res = Remote(f"http://127.0.0.1:{link.port}", 30), {s: [] for s in SIZES}
            for _ in range(ROUNDS):
                for s in SIZES:
                    u, d = link.bytes["up"], link.bytes["down"]
                    t = time.perf_counter()
                    rem.request("POST", "/probe", b"x" * s, {"Content-Type": "application/octet-stream"})
                    wall = (time.perf_counter() - t) * 1e3
                    res[s].append(wall - rtt - (link.bytes["up"] - u + link.bytes["down"] - d) * 8 / (bw * 1e3))
            rem.close()
        out[f"{bw} Mbps {rtt} ms"] = {s: _stats(v) for s, v in res.items()}
    return out


def idle_gap(bundles: dict, prof: dict, image) -> dict:  # noqa: ANN001 - uint8 image
    from edgemap.split.client import Choice, SplitClient
    from edgemap.split.shaping import ShapedLink

    last, res = prof["cuts"][-1], {0.0: [], 0.02: [], 0.1: []}
    with ShapedLink("127.0.0.1", PORT, 20, 5) as link:
        cl = SplitClient(bundles["edge"], f"http://127.0.0.1:{link.port}", timeout_s=10, threads=1)
        for _ in range(5):
            cl.run(image, Choice(last["name"], "fp32"))
        for _ in range(20):
            for idle in res:
                time.sleep(idle)
                u, d = link.bytes["up"], link.bytes["down"]
                r = cl.run(image, Choice(last["name"], "fp32"))
                w = link.bytes["up"] - u + link.bytes["down"] - d
                res[idle].append(r.network_ms + r.server_ms - 5 - w * 8 / 20e3 - last["tail_server"]["ms"])
        cl.close()
    return {f"idle {k * 1e3:g} ms before": _stats(v) for k, v in res.items()}


def main() -> None:
    import split_bench as sb

    from edgemap.core.atomic import write_json
    from edgemap.core.evidence import machine_evidence
    from edgemap.data.resolve import load_eval_data

    cifar = load_eval_data(None).subset(slice(0, 1000))
    _, prof, bundles = sb.prepare("resnet9s", None, cifar, sb.WORK)
    server = sb.start_server(bundles["server"], PORT)
    try:
        rec = {"command": " ".join(["python"] + sys.argv), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "residual_by_body_bytes": body_sizes(), "smallest_split_idle_gap_20mbps_5ms": idle_gap(bundles, prof, cifar.images[0])}
    finally:
        server.terminate()
        server.wait(timeout=30)
    rec["evidence"] = machine_evidence(1)
    write_json(Path("benchmarks/results/split_overhead_probe.json"), rec)
    print(rec["residual_by_body_bytes"], rec["smallest_split_idle_gap_20mbps_5ms"], rec["evidence"].get("load_average"))


if __name__ == "__main__":
    main()
