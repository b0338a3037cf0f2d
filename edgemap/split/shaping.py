"""An emulated network link on loopback: a TCP relay that paces every byte at a set bandwidth and delays it
by half the round-trip time in each direction, like `tc netem rate R delay D`, in-process and without
root. Each direction is one serial link shared by all connections (a token bucket with no burst): a
chunk leaves when the previous ones have, plus its size / bandwidth, and arrives RTT/2 later. Bandwidth
and RTT can change while it runs (the adaptivity benchmark steps them). Counts the bytes that cross,
HTTP framing included. Standard library only.
"""

from __future__ import annotations

import queue
import socket
import threading
import time

CHUNK = 4096  # bytes paced at a time: 33 us at 1 Gbps, 33 ms at 1 Mbps


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
                 listen_host: str = "127.0.0.1", listen_port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.lock = threading.Lock()
        self.set(bandwidth_mbps, rtt_ms)
        self.free_at = {"up": 0.0, "down": 0.0}
        self.bytes = {"up": 0, "down": 0}
        self.sock = socket.create_server((listen_host, listen_port))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True, name="shaped-link")
        self.thread.start()

    @property
    def target_port(self) -> int:
        return self.target[1]

    def set(self, bandwidth_mbps: float, rtt_ms: float) -> None:
        """Change the link's bandwidth and round-trip time (applies to bytes read from now on)."""
        if not bandwidth_mbps > 0 or rtt_ms < 0:
            raise ValueError(f"bandwidth must be > 0 and RTT >= 0, got {bandwidth_mbps} Mbps, {rtt_ms} ms")
        with self.lock:
            self.bandwidth_mbps, self.rtt_ms = float(bandwidth_mbps), float(rtt_ms)

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
        """When a chunk of n bytes read now arrives at the other end."""
        with self.lock:
            now = time.monotonic()
            done = max(now, self.free_at[direction]) + n * 8 / (self.bandwidth_mbps * 1e6)
            self.free_at[direction] = done
            self.bytes[direction] += n
            return done + self.rtt_ms / 2e3

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
