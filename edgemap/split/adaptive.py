"""Re-planning from what the edge measures: round-trip time from pings, bandwidth from its own requests.

Each request answered by the server gives (bytes that crossed, network time = wall time less the
server's reported compute); a ping gives the fixed cost (HTTP handling + RTT). Bandwidth = bytes x 8 /
(network time - ping). The estimates are the best of the last few samples (delays from a busy machine only
add), so a slow request or two do not flip the plan, but a real change does within a few requests. While the plan keeps everything on the
device no request measures the link, so a small probe is sent every few requests. Edge-side: no torch.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from pathlib import Path

import numpy as np

from edgemap.errors import EdgemapError
from edgemap.split.client import Choice, Result, SplitClient
from edgemap.split.planner import RESPONSE_HEADER_BYTES, Network, plan

WINDOW = 3             # samples in each median
PING_EVERY = 10        # requests between pings while using the server
PROBE_EVERY = 2        # requests between probes while everything runs on the device
PROBE_BYTES = 8192      # at most; a probe is sized to take ~PROBE_MS at the current estimate (>= 256 B)
PROBE_MS = 20.0
MAX_MBPS = 10_000.0    # a transfer too fast to time says "at least this"


class LinkEstimator:
    """RTT (ping: HTTP handling + round trip) and bandwidth over the last WINDOW samples: the fastest of them,
    since queueing and a busy CPU only ever add delay. A drop shows after WINDOW slow requests; a recovery
    after one fast one."""

    def __init__(self, request_header_bytes: int) -> None:
        self.request_header_bytes = request_header_bytes  # carried into the Network it reports (a token's header)
        self.pings: deque[float] = deque(maxlen=WINDOW)
        self.mbps: deque[float] = deque(maxlen=WINDOW)

    def add_ping(self, ms: float) -> None:
        self.pings.append(ms)

    def add_transfer(self, payload_bytes: float, network_ms: float) -> None:
        """One request's bytes (bodies + framing) and its network time (wall time less the server's compute)."""
        if not self.pings:
            return
        t = network_ms - min(self.pings)
        self.mbps.append(min(payload_bytes * 8 / (t * 1e3), MAX_MBPS) if t > 0.01 else MAX_MBPS)

    def network(self) -> Network | None:
        """The link as measured, or None before the first ping and transfer."""
        if not self.pings or not self.mbps:
            return None
        return Network(max(self.mbps), min(self.pings), 0.0, self.request_header_bytes)


class AdaptiveRunner:
    """Plan each request from the measured link; switch split point when the plan's choice changes."""

    def __init__(self, client: SplitClient, initial: Network, objective: str = "latency",
                 max_drop: float | None = None, min_agreement: float | None = None) -> None:
        if client.profile is None:
            raise EdgemapError(f"{client.bundle}: no plan_profile.json; re-export with `edgemap split export`")
        if client.remote is None:
            raise EdgemapError("--adaptive needs --server")
        self.client, self.objective, self.max_drop, self.min_agreement = client, objective, max_drop, min_agreement
        self.link = LinkEstimator(client.request_header_bytes)
        self.initial = dataclasses.replace(initial, request_header_bytes=client.request_header_bytes)
        self.count = 0
        self.since_ping = 0
        for _ in range(2):  # the first exchange also pays for the connection and the server's first request
            self.probe()

    def network(self) -> Network:
        return self.link.network() or self.initial

    def choice(self) -> Choice:
        _, best = plan(self.client.profile, self.network(), self.objective, self.max_drop, min_agreement=self.min_agreement)
        return Choice(best.point, best.encoding, best.quality)

    def step(self, image: np.ndarray) -> Result:
        """One image through the currently best option; then update the link estimate (and probe if needed)."""
        choice = self.choice()
        result = self.client.run(image, choice)
        result.extra["network_estimate"] = vars(self.network()).copy()
        self.count += 1
        if result.ran in ("split", "server"):
            self.link.add_transfer(result.bytes_up + result.bytes_down + self.client.request_header_bytes
                                   + RESPONSE_HEADER_BYTES, result.network_ms)
            self.since_ping += 1
            if self.since_ping >= PING_EVERY:
                result.extra["probe_ms"] = self.ping()
        elif self.count % PROBE_EVERY == 0:
            result.extra["probe_ms"] = self.probe()
        return result

    def ping(self) -> float:
        t0 = time.perf_counter()
        try:
            self.client.remote.request("GET", "/ping")
            self.link.add_ping((time.perf_counter() - t0) * 1e3)
        except EdgemapError:
            pass  # the server is down: the next request falls back or fails on its own
        self.since_ping = 0
        return (time.perf_counter() - t0) * 1e3

    def probe(self) -> float:
        """A ping and a PROBE_BYTES upload: refreshes both estimates while nothing else measures the link."""
        t0 = time.perf_counter()
        self.ping()
        size = int(min(max(self.network().bandwidth_mbps * 125 * PROBE_MS, 256), PROBE_BYTES))
        t1 = time.perf_counter()
        try:
            status, _, _ = self.client.remote.request("POST", "/probe", bytes(size),
                                                      {"Content-Type": "application/octet-stream"})
            if status == 200:
                self.link.add_transfer(size + self.client.request_header_bytes + RESPONSE_HEADER_BYTES,
                                       (time.perf_counter() - t1) * 1e3)
        except EdgemapError:
            pass
        return (time.perf_counter() - t0) * 1e3


def run_files(bundle: Path, images: list[Path], server: str | None, option: str, bandwidth_mbps: float, rtt_ms: float,
              objective: str, max_drop: float | None, adaptive: bool, fallback: bool, timeout_s: float, threads: int,
              as_json: bool, min_agreement: float | None = None, token: str | None = None,
              ca_file: Path | None = None) -> list[Result]:
    """`edgemap split infer`: classify image files, printing what ran where."""
    import json

    from edgemap.data.image_folder import read_image

    client = SplitClient(bundle, server, timeout_s, fallback, threads, token=token, ca_file=ca_file)
    if client.server_problem and server:
        print(f"warning: {client.server_problem}; running on the device")
    runner = (AdaptiveRunner(client, Network(bandwidth_mbps, rtt_ms), objective, max_drop, min_agreement)
              if adaptive else None)
    fixed = None
    if runner is None:
        if option == "plan":
            if client.profile is None:
                raise EdgemapError(f"{bundle}: no plan_profile.json to plan with; give --option")
            net = Network(bandwidth_mbps, rtt_ms, request_header_bytes=client.request_header_bytes)
            fixed = plan(client.profile, net, objective, max_drop, min_agreement=min_agreement)[1]
            fixed = Choice(fixed.point, fixed.encoding, fixed.quality)
        else:
            fixed = Choice.parse(option)
        if fixed.point != "device" and server is None and not fallback:
            raise EdgemapError(f"option {fixed.label} needs --server (or --fallback local)")
    results = []
    try:
        for path in images:
            image = read_image(Path(path), "L" if client.local.preprocess.num_channels == 1 else "RGB")
            r = runner.step(image) if runner else client.run(image, fixed)
            results.append(r)
            _print(path, r, client.local.class_names, as_json, json)
    finally:
        client.close()
    return results


def _print(path: Path, r: Result, class_names: list[str], as_json: bool, json) -> None:  # noqa: ANN001 - module
    top = int(r.logits[0].argmax())
    if as_json:
        print(json.dumps({"image": str(path), "top1": class_names[top], "option": r.choice, "ran": r.ran,
                          "total_ms": round(r.total_ms, 3), "device_ms": round(r.device_ms, 3),
                          "network_ms": round(r.network_ms, 3), "server_ms": round(r.server_ms, 3),
                          "bytes_up": r.bytes_up, "error": r.error}))
        return
    note = f" (fell back: {r.error})" if r.error else ""
    print(f"{path}: {class_names[top]}  via {r.choice} [{r.ran}] {r.total_ms:.2f} ms, {r.bytes_up} B sent{note}")
