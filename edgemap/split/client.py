"""The edge half: run the head locally, send the activation (or the image), read the server's logits.

Every request has a deadline (connect, send and read); a server that is down, slow, for another model,
or answers garbage is an EdgemapError, or with `fallback_local` the whole model runs here instead and
the result says why. numpy + onnxruntime + the standard library's http.client: no torch, no httpx.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from edgemap.errors import EdgemapError
from edgemap.split import codec
from edgemap.split.planner import framing_bytes


@dataclass(frozen=True)
class Choice:
    """Where to cut and how to encode: point is "device", "input" or c<k>."""

    point: str
    encoding: str = ""
    quality: int | None = None

    @property
    def label(self) -> str:
        return codec.option_label(self.point, self.encoding, self.quality)

    @classmethod
    def parse(cls, text: str) -> "Choice":
        """'device', 'input/jpeg-q75', 'input/raw', 'c5/int8-zstd' -> Choice."""
        point, _, enc = text.partition("/")
        quality = None
        if "-q" in enc:
            enc, _, q = enc.partition("-q")
            if not q.isdigit():
                raise EdgemapError(f"option {text!r}: the quality after -q is a number 1..100, e.g. input/jpeg-q75")
            quality = int(q)
        if point != "device" and not enc:
            raise EdgemapError(f"option {text!r}: give point/encoding, e.g. c5/int8, input/jpeg-q75, or device")
        return cls(point, enc, quality).checked()

    def checked(self) -> "Choice":
        """Itself, when its encoding (and quality) exist for its kind of point; else an EdgemapError (a mistake in the
        option, never a server problem: the local fallback does not hide it)."""
        lossy = self.point == "input" and self.encoding in ("jpeg", "webp")
        kinds = () if self.point == "device" else codec.IMAGE_KINDS if self.point == "input" else codec.ACTIVATION_ENCODINGS
        if kinds and self.encoding not in kinds:
            raise EdgemapError(f"option {self.label}: unknown encoding {self.encoding!r} for "
                               f"{'the input' if self.point == 'input' else 'an activation'}; choose from {', '.join(kinds)}")
        if self.quality is not None and not (lossy and 1 <= self.quality <= 100):
            raise EdgemapError(f"option {self.label}: a quality (1..100) is for input/jpeg and input/webp only")
        return self


@dataclass
class Result:
    """One inference: logits, what ran where, and what it cost."""

    logits: np.ndarray
    choice: str
    ran: str                 # "split", "server", "device", or "fallback"
    total_ms: float
    device_ms: float = 0.0   # head (or whole model) here
    encode_ms: float = 0.0
    network_ms: float = 0.0  # request sent -> answer read, less the server's own time
    server_ms: float = 0.0
    bytes_up: int = 0        # request body
    bytes_down: int = 0      # response body
    error: str = ""
    extra: dict = field(default_factory=dict)


def _tls_context(ca_file: str | Path | None) -> ssl.SSLContext:
    """Verify the server's certificate against `ca_file` (a self-signed server's own certificate), else the system's CAs."""
    if ca_file is not None and not Path(ca_file).is_file():
        raise EdgemapError(f"{ca_file}: CA certificate file not found")
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    except (ssl.SSLError, ValueError) as exc:
        raise EdgemapError(f"{ca_file}: not a PEM CA certificate ({exc.__class__.__name__})") from None


class Remote:
    """A keep-alive HTTP connection to the split server with a deadline on every request."""

    def __init__(self, url: str, timeout_s: float, token: str | None = None, ca_file: str | Path | None = None) -> None:
        u = urlparse(url if "://" in url else f"http://{url}")
        if u.scheme not in ("http", "https") or not u.hostname:
            raise EdgemapError(f"--server {url!r}: give http://HOST:PORT or https://HOST:PORT")
        if not timeout_s > 0:
            raise EdgemapError(f"timeout must be > 0 s, got {timeout_s}")
        if ca_file is not None and u.scheme != "https":
            raise EdgemapError(f"a CA file is for an https:// server, not {url!r}")
        self.tls = _tls_context(ca_file) if u.scheme == "https" else None
        self.host, self.port, self.timeout_s = u.hostname, u.port or (443 if self.tls else 80), timeout_s
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}  # the server compares it in constant time
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> tuple[int, dict, bytes]:
        """Status, lower-cased headers and body; EdgemapError on any network failure or deadline."""
        deadline = time.monotonic() + self.timeout_s
        for attempt in (0, 1):  # a kept-alive connection the server closed is retried once on a fresh one
            try:
                if self.conn is None:
                    self.conn = (http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout_s, context=self.tls)
                                 if self.tls else http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s))
                self.conn.request(method, path, body=body, headers={**self.auth, **(headers or {})})
                self.conn.sock.settimeout(max(deadline - time.monotonic(), 0.001))
                resp = self.conn.getresponse()
                data = resp.read()
                if time.monotonic() > deadline:
                    raise socket.timeout("deadline passed")
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                if attempt or time.monotonic() > deadline:
                    raise EdgemapError(f"server {self.host}:{self.port} closed the connection ({exc.__class__.__name__})") from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if isinstance(exc, (socket.timeout, TimeoutError)):
                    raise EdgemapError(f"server {self.host}:{self.port} did not answer within {self.timeout_s:g} s") from None
                raise EdgemapError(f"server {self.host}:{self.port} unreachable ({exc.__class__.__name__}: "
                                   f"{str(exc)[:120]})") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class SplitClient:
    """The edge bundle loaded and verified (whole model + heads), optionally connected to a server."""

    def __init__(self, bundle: str | Path, server: str | None = None, timeout_s: float = 5.0,
                 fallback_local: bool = False, threads: int = 0, device_slowdown: float = 1.0,
                 token: str | None = None, ca_file: str | Path | None = None) -> None:
        from edgemap.deploy.edge import EdgeModel
        from edgemap.runtime.onnxruntime_backend import OrtSession
        from edgemap.split.bundle import read_split_manifest, selftest_parts

        self.bundle = Path(bundle)
        self.manifest = read_split_manifest(self.bundle, "edge")
        self.split = self.manifest["split"]
        self.local = EdgeModel(self.bundle, threads=threads)
        self.heads = {p: OrtSession(self.bundle / r["file"], threads=threads, providers=["CPUExecutionProvider"])
                      for p, r in self.split["points"].items()}
        selftest_parts(self.bundle, self.manifest, self.heads)
        prof = self.bundle / "plan_profile.json"
        self.profile = json.loads(prof.read_text()) if prof.is_file() else None
        self.fallback_local = fallback_local
        self.request_header_bytes = framing_bytes(token)  # what each request's framing adds on the wire (the planner's)
        self.pad_ms = self._device_pads(device_slowdown)
        self.remote = Remote(server, timeout_s, token, ca_file) if server else None
        self.server_problem = self._check_server() if self.remote else "no server given"

    def _check_server(self) -> str:
        """'' when the server serves this very model and our points; else why not (raised unless falling back)."""
        try:
            status, _, body = self.remote.request("GET", "/info")
            if status == 401:
                raise EdgemapError("the server wants a bearer token: give the one it serves with (--token-file)")
            try:
                info = json.loads(body) if status == 200 else None
            except ValueError:
                info = None
            if not isinstance(info, dict) or not isinstance(info.get("points"), dict) or not all(
                    isinstance(v, dict) for v in info["points"].values()):
                raise EdgemapError(f"server answered /info with status {status} and no split-point list: not a split server")
            if info.get("model_sha256") != self.split["model_sha256"]:
                raise EdgemapError(f"mismatched split: the server runs model {str(info.get('model_sha256'))[:12]}, this "
                                   f"edge bundle is for {self.split['model_sha256'][:12]}; export both halves together")
            bad = [p for p, r in self.split["points"].items() if info["points"].get(p, {}).get("tensor") != r["tensor"]]
            if bad:
                raise EdgemapError(f"mismatched split: the server lacks split point(s) {', '.join(bad)} of this edge bundle")
        except EdgemapError as exc:
            if not self.fallback_local:
                raise EdgemapError(str(exc)) from None
            return str(exc)
        return ""

    def run(self, image: np.ndarray, choice: Choice) -> Result:
        """One uint8 H x W x C image through `choice`; falls back to the whole model here when allowed."""
        t0 = time.perf_counter()
        if choice.point == "device":
            logits = self._stretch("device", lambda: self.local.logits([image]))
            ms = (time.perf_counter() - t0) * 1e3
            return Result(logits, choice.label, "device", ms, device_ms=ms)
        if choice.point != "input" and choice.point not in self.heads:
            raise EdgemapError(f"unknown split point {choice.point!r}; this bundle has input, device, {', '.join(self.heads)}")
        choice.checked()
        try:
            if self.server_problem:
                raise EdgemapError(self.server_problem)
            return self._remote(image, choice, t0)
        except EdgemapError as exc:
            if not self.fallback_local:
                raise
            logits = self._stretch("device", lambda: self.local.logits([image]))
            ms = (time.perf_counter() - t0) * 1e3
            return Result(logits, choice.label, "fallback", ms, device_ms=ms, error=str(exc))

    def _remote(self, image: np.ndarray, choice: Choice, t0: float) -> Result:
        device_ms = 0.0
        t1 = time.perf_counter()
        if choice.point == "input":
            payload = codec.encode_image(image, choice.encoding, choice.quality or 75)
        else:
            act = self._stretch(choice.point, lambda: self.heads[choice.point].run(self.local.preprocess.apply(image[None])))
            device_ms = (time.perf_counter() - t1) * 1e3
            t1 = time.perf_counter()
            payload = codec.encode_activation(act, choice.encoding)
        encode_ms = (time.perf_counter() - t1) * 1e3
        headers = {**payload.headers, "X-Model-Sha256": self.split["model_sha256"], "X-Split-Point": choice.point,
                   "Content-Type": "application/octet-stream"}
        t2 = time.perf_counter()
        status, rh, body = self.remote.request("POST", "/infer", payload.body, headers)
        wire_ms = (time.perf_counter() - t2) * 1e3
        logits = self._check_answer(status, rh, body)
        server_ms = float(rh.get("x-server-ms", 0.0) or 0.0)
        return Result(logits, choice.label, "split" if choice.point != "input" else "server", (time.perf_counter() - t0) * 1e3,
                      device_ms, encode_ms, max(wire_ms - server_ms, 0.0), server_ms, len(payload.body), len(body))

    def _device_pads(self, slowdown: float) -> dict[str, float]:
        """Emulating a device k times slower than this host (benchmarks): after each local compute, wait (k - 1) x
        its median measured here (plan_profile.json), so the device's time is k x the median plus real jitter."""
        if slowdown == 1:
            return {}
        if slowdown < 1 or self.profile is None or self.profile["whole"]["device"]["basis"] != "measured":
            raise EdgemapError("device slowdown needs k >= 1 and a bundle profiled with --device host")
        pads = {"device": (slowdown - 1) * self.profile["whole"]["device"]["ms"]}
        pads.update({c["name"]: (slowdown - 1) * c["head_device"]["ms"] for c in self.profile["cuts"]})
        return pads

    def _stretch(self, key: str, compute):  # noqa: ANN001, ANN202 - callable -> its result
        out = compute()
        if self.pad_ms.get(key):
            time.sleep(self.pad_ms[key] / 1e3)
        return out

    def _check_answer(self, status: int, headers: dict, body: bytes) -> np.ndarray:
        """The logits in a 200 answer from this model's server; anything else is an EdgemapError."""
        if status != 200:
            try:
                detail = json.loads(body).get("detail", "")
            except (ValueError, AttributeError):
                detail = body[:120].decode("utf-8", "replace")
            raise EdgemapError(f"server refused the request (HTTP {status}): {detail}")
        n = len(self.local.class_names)
        if headers.get("x-model-sha256") != self.split["model_sha256"] or len(body) != 4 * n:
            raise EdgemapError(f"the server's answer is not {n} logits from this model ({len(body)} bytes)")
        logits = np.frombuffer(body, dtype=np.float32).reshape(1, n)
        if not np.isfinite(logits).all():
            raise EdgemapError("the server answered NaN or Inf logits")
        return logits

    def close(self) -> None:
        """Close the connection and the sessions."""
        if self.remote:
            self.remote.close()
        self.local.close()
        for s in self.heads.values():
            s.close()
