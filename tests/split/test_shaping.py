"""The emulated link's network conditions: jitter (delays vary, order and bytes kept), loss with retry (a lost
packet arrives after the retransmission timeout, intact), and the adaptive edge still switching under both."""

from __future__ import annotations

import socket
import socketserver
import threading
import time

import numpy as np
import pytest

from edgemap.split.shaping import ShapedLink


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture(scope="module")
def echo_port():  # noqa: ANN201 - int
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _echo(sock: socket.socket, payload: bytes) -> tuple[float, bytes]:
    """Round-trip ms of one message through the link, and what came back."""
    t0 = time.perf_counter()
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        got += sock.recv(65536)
    return (time.perf_counter() - t0) * 1e3, got


def test_jitter_varies_the_delay_and_keeps_order(echo_port):
    with ShapedLink("127.0.0.1", echo_port, 1000, rtt_ms=20, jitter_ms=8, seed=1) as link:
        with socket.create_connection(("127.0.0.1", link.port), timeout=10) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rtts = [_echo(sock, b"x")[0] for _ in range(25)]
            big = np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes()  # ~50 chunks, each jittered
            _, back = _echo(sock, big)
    assert back == big                                  # in order and intact
    assert min(rtts) >= 4 - 0.5                         # each way at least 10 - 8 ms
    assert max(rtts) - min(rtts) > 6                    # uniform +-8 ms each way: 25 round trips spread out
    assert 14 < float(np.median(rtts)) < 60             # about 20 ms (upper bound: a busy CI)


def test_lost_packets_are_resent_after_the_timeout(echo_port):
    with ShapedLink("127.0.0.1", echo_port, 1000, rtt_ms=2, loss=0.3, retransmit_ms=60, seed=2) as link:
        with socket.create_connection(("127.0.0.1", link.port), timeout=10) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            results = [_echo(sock, bytes([i]) * 1000) for i in range(20)]
        lost = link.lost["up"] + link.lost["down"]
        sent = link.bytes["up"] + link.bytes["down"]
    assert all(back == bytes([i]) * 1000 for i, (_, back) in enumerate(results))
    slow = sum(ms >= 60 for ms, _ in results)
    assert lost > 0 and 1 <= slow <= lost               # each lost packet costs one timeout (two may share a trip)
    assert sent == 2 * 20 * 1000 + 1000 * lost          # a resent packet crosses the link twice
    assert sum(ms < 40 for ms, _ in results) >= 5       # the others do not wait


def test_loss_is_per_packet_not_per_chunk(echo_port):
    """8 KB messages are read in 4 KB chunks, but what is lost and resent is one packet (<= PACKET bytes) each time."""
    from edgemap.split.shaping import PACKET

    payload = bytes(range(256)) * 32  # 8192 B: 6 packets
    with ShapedLink("127.0.0.1", echo_port, 1000, rtt_ms=2, loss=0.1, retransmit_ms=20, seed=5) as link:
        with socket.create_connection(("127.0.0.1", link.port), timeout=10) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            backs = [_echo(sock, payload)[1] for _ in range(10)]
        lost, resent = link.lost["up"] + link.lost["down"], link.bytes["up"] + link.bytes["down"] - 2 * 10 * len(payload)
    assert all(b == payload for b in backs)
    assert lost > 0 and 0 < resent <= PACKET * lost     # per chunk, each loss would resend up to 4096 B


def test_link_settings_are_checked():
    with pytest.raises(ValueError, match="loss"):
        ShapedLink("127.0.0.1", 9, 10, 5, loss=1.0)
    with pytest.raises(ValueError, match="jitter"):
        ShapedLink("127.0.0.1", 9, 10, 5, jitter_ms=-1)


def test_adaptive_switches_under_jitter_and_loss(split_export, helpers):
    from edgemap.split.adaptive import AdaptiveRunner
    from edgemap.split.client import SplitClient
    from edgemap.split.planner import Network, emulated_device
    from edgemap.split.server import TailServer, create_app

    images = split_export["images"].images
    app = create_app(TailServer(split_export["server"], threads=1))
    with helpers.running(app) as url:
        port = int(url.rsplit(":", 1)[1])
        with ShapedLink("127.0.0.1", port, 100, rtt_ms=4, jitter_ms=1.5, loss=0.05, retransmit_ms=40, seed=3) as link:
            # an emulated device taking ~150 ms: slower than a request even when a loaded CI machine (or a lost
            # chunk) adds tens of ms to it
            k = 150.0 / split_export["profile"]["whole"]["device"]["ms"]
            client = SplitClient(split_export["edge"], f"http://127.0.0.1:{link.port}", timeout_s=10, device_slowdown=k)
            client.profile = emulated_device(client.profile, k)
            runner = AdaptiveRunner(client, Network(100, 4), max_drop=100)
            ran = []
            for i in range(18):
                if i in (6, 12):
                    link.set(0.01 if i == 6 else 100, 4)  # 10 kbit/s: even 64 raw bytes + framing take ~0.5 s
                r = runner.step(images[i % len(images)])
                assert not r.error                        # no failed request: the lost chunks were resent
                ran.append(r.ran)
            client.close()
        assert link.lost["up"] + link.lost["down"] > 0
    assert ran[2:6].count("device") == 0                 # on the server while the link is fast
    assert "device" in ran[6:11] and ran[10] == "device"  # on the device within 5 requests of the drop
    assert "device" not in ran[16:]                       # and back within 5 of the recovery
