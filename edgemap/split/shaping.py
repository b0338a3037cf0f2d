"""An emulated network link on loopback: a TCP relay that paces every byte at a set bandwidth and delays it
by half the round-trip time in each direction, like `tc netem rate R delay D [J] loss P`, in-process and
without root (this host's kernel has no netem qdisc, even inside `unshare -rn`). Each direction is one
serial link shared by all connections (a token bucket with no burst): a chunk leaves when the previous ones
have, plus its size / bandwidth, and arrives RTT/2 later.

Jitter: each chunk's one-way delay varies uniformly by +- jitter_ms (never below zero); chunks keep their
order, as a TCP stream (and netem with a rate) does, so a late chunk holds back the ones behind it.
Loss with retry, per packet: each PACKET-byte piece of a chunk (the TCP payload of a 1500-byte Ethernet
frame) is lost with probability `loss` and, as TCP would, sent again after a retransmission timeout
(`retransmit_ms`, Linux's minimum RTO of 200 ms by default; doubled each time the resent packet is lost
too). Its bytes cross the link again, and the chunk (with the ones behind it, in order) arrives when its
slowest packet does. Bandwidth, RTT, jitter and loss can change while it runs (the adaptivity benchmark
steps them). Counts the bytes that cross, HTTP framing and resent packets included. Standard library only.
"""

from __future__ import annotations

import queue
import random
import socket
import threading
import time

CHUNK = 4096  # bytes paced at a time: 33 us at 1 Gbps, 33 ms at 1 Mbps
PACKET = 1448  # TCP payload of a 1500-byte frame (MTU - 40 B of IP/TCP headers - 12 B of timestamps): the unit of loss
RETRANSMIT_MS = 200.0  # Linux's TCP_RTO_MIN: a lost segment of a short exchange is resent after at least this


class _Pair:
    """The two sockets of one relayed connection, closed when both directions have finished."""

    def __init__(self, a: socket.socket, b: socket.socket) -> None:
        self.sockets, self.left, self.lock = (a, b), 2, threading.Lock()

    def done(self) -> None:
        with self.lock:
            self.left -= 1
            if self.left:
                return
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass


class ShapedLink:
    """Listen on listen_host:listen_port (0: any free port) and relay to target_host:target_port through the link."""

    def __init__(self, target_host: str, target_port: int, bandwidth_mbps: float, rtt_ms: float,
                 listen_host: str = "127.0.0.1", listen_port: int = 0, jitter_ms: float = 0.0, loss: float = 0.0,
                 retransmit_ms: float = RETRANSMIT_MS, seed: int = 0) -> None:
        self.target = (target_host, target_port)
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.set(bandwidth_mbps, rtt_ms, jitter_ms, loss, retransmit_ms)
        self.free_at = {"up": 0.0, "down": 0.0}
        self.last_arrival = {"up": 0.0, "down": 0.0}
        self.bytes = {"up": 0, "down": 0}
        self.lost = {"up": 0, "down": 0}  # packets lost (and sent again; a packet lost twice counts twice)
        self.sock = socket.create_server((listen_host, listen_port))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True, name="shaped-link")
        self.thread.start()

    @property
    def target_port(self) -> int:
        return self.target[1]

    def set(self, bandwidth_mbps: float, rtt_ms: float, jitter_ms: float | None = None, loss: float | None = None,
            retransmit_ms: float | None = None) -> None:
        """Change the link (applies to bytes read from now on); jitter, loss and retransmit time stay as they were
        unless given."""
        jitter_ms = getattr(self, "jitter_ms", 0.0) if jitter_ms is None else jitter_ms
        loss = getattr(self, "loss", 0.0) if loss is None else loss
        retransmit_ms = getattr(self, "retransmit_ms", RETRANSMIT_MS) if retransmit_ms is None else retransmit_ms
        if not bandwidth_mbps > 0 or rtt_ms < 0 or jitter_ms < 0 or not 0 <= loss < 1 or retransmit_ms < 0:
            raise ValueError(f"need bandwidth > 0, RTT, jitter and retransmit time >= 0 and 0 <= loss < 1; got "
                             f"{bandwidth_mbps} Mbps, {rtt_ms} ms, +-{jitter_ms} ms, loss {loss}, retransmit {retransmit_ms} ms")
        with self.lock:
            self.bandwidth_mbps, self.rtt_ms = float(bandwidth_mbps), float(rtt_ms)
            self.jitter_ms, self.loss, self.retransmit_ms = float(jitter_ms), float(loss), float(retransmit_ms)

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            for s in (client, upstream):  # paced chunks must leave at once, not wait for Nagle's ACK
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(client, upstream)
            for src, dst, direction in ((client, upstream, "up"), (upstream, client, "down")):
                q: queue.Queue = queue.Queue()
                threading.Thread(target=self._read, args=(src, q, direction), daemon=True).start()
                threading.Thread(target=self._write, args=(dst, q, pair), daemon=True).start()

    def _schedule(self, n: int, direction: str) -> float:
        """When a chunk of n bytes read now arrives at the other end (in order after the chunks before it)."""
        with self.lock:
            now = time.monotonic()
            send_s = n * 8 / (self.bandwidth_mbps * 1e6)
            done = max(now, self.free_at[direction]) + send_s
            self.bytes[direction] += n
            delay = self.rtt_ms / 2e3
            if self.jitter_ms:
                delay = max(delay + self.rng.uniform(-self.jitter_ms, self.jitter_ms) / 1e3, 0.0)
            resent, wait_s = self._losses(n, direction) if self.loss else (0, 0.0)
            self.bytes[direction] += resent
            self.free_at[direction] = done + resent * 8 / (self.bandwidth_mbps * 1e6)  # resent bytes use the link
            done = self.free_at[direction] + wait_s
            arrival = max(done + delay, self.last_arrival[direction])
            self.last_arrival[direction] = arrival
            return arrival

    def _losses(self, n: int, direction: str) -> tuple[int, float]:
        """The packets of an n-byte chunk lost (called under the lock): bytes resent, and how long the chunk waits for
        its slowest packet (one timeout per loss of the same packet, doubling; different packets' timeouts overlap)."""
        resent, wait_s = 0, 0.0
        for start in range(0, n, PACKET):
            size, rto, waited = min(PACKET, n - start), self.retransmit_ms / 1e3, 0.0
            while self.rng.random() < self.loss:
                self.lost[direction] += 1
                resent += size
                waited += rto
                rto *= 2
            wait_s = max(wait_s, waited)
        return resent, wait_s

    def _read(self, src: socket.socket, q: queue.Queue, direction: str) -> None:
        try:
            while data := src.recv(CHUNK):
                q.put((self._schedule(len(data), direction), data))
        except OSError:
            pass
        q.put((time.monotonic(), b""))

    @staticmethod
    def _write(dst: socket.socket, q: queue.Queue, pair: "_Pair") -> None:
        try:
            while True:
                at, data = q.get()
                delay = at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            pair.done()

    def close(self) -> None:
        """Stop accepting (open relays end when their peers close)."""
        self.closed.set()
        self.sock.close()
        self.thread.join(timeout=1)

    def __enter__(self) -> "ShapedLink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
