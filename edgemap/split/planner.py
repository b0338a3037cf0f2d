"""Every way to run a model between device and server, with predicted latency, device energy, bytes and
accuracy, and the best one under an objective and an accuracy budget.

Options: all on the device; all on the server with the input sent raw, as PNG, or as JPEG/WebP at a few
qualities (the baseline split methods often lose to); every split point x activation encoding.
End-to-end latency = device compute + encode + HTTP overhead + RTT + bytes x 8 / bandwidth (request and
response, headers included) + decode + server compute. Pure arithmetic over a profile (profile.py):
no torch, no onnx; the edge client re-plans with it from measured bandwidth and RTT.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from edgemap.errors import EdgemapError

OBJECTIVES = ("latency", "energy")
# Bytes of HTTP/1.1 framing per request and per response as the split client and server send them
# (request line + Host/Content-Length/X-* headers with the model's sha256; status line + date/server/
# content-*/X-* headers): 319 and 236 B counted on the wire (tests/split/test_serve_infer.py checks +-40 B).
REQUEST_HEADER_BYTES = 320
RESPONSE_HEADER_BYTES = 235
BEARER_HEADER = "Authorization: Bearer {}\r\n"  # sent with every request when the server wants a token
DEFAULT_OVERHEAD_MS = 1.5  # client + server HTTP handling per request on this host (the benchmark measures it)
RADIO_W = 1.0  # assumed Wi-Fi radio power while sending (phones measure ~0.7-1.3 W uplink); labelled assumed


@dataclass(frozen=True)
class Network:
    """The link between device and server as the plan sees it."""

    bandwidth_mbps: float
    rtt_ms: float
    overhead_ms: float = DEFAULT_OVERHEAD_MS
    request_header_bytes: int = REQUEST_HEADER_BYTES  # HTTP framing of each request: framing_bytes(token)

    def __post_init__(self) -> None:
        if not self.bandwidth_mbps > 0 or self.rtt_ms < 0 or self.overhead_ms < 0:
            raise EdgemapError(f"bandwidth must be > 0 Mbps and RTT/overhead >= 0 ms; got {self.bandwidth_mbps} Mbps, "
                               f"{self.rtt_ms} ms RTT, {self.overhead_ms} ms overhead")
        if self.request_header_bytes < 0:
            raise EdgemapError(f"request header bytes must be >= 0, got {self.request_header_bytes}")

    def transfer_ms(self, payload_bytes: float) -> float:
        """Time to push `payload_bytes` of body through the link."""
        return payload_bytes * 8 / (self.bandwidth_mbps * 1e3)


def framing_bytes(token: str | None = None) -> int:
    """HTTP framing of each request the split client sends: the usual headers, plus the bearer header when a token
    is used (it crosses the link with every request, so the plan counts it in bytes and latency)."""
    return REQUEST_HEADER_BYTES + (len(BEARER_HEADER.format(token).encode()) if token else 0)


@dataclass
class Option:
    """One way to run the model, with its predicted cost and measured accuracy."""

    label: str
    point: str               # "device", "input", or a cut name c<k>
    encoding: str            # activation or input encoding ("" for device)
    quality: int | None
    bytes_up: float          # request body (the framing, net.request_header_bytes, is in network_ms)
    device_ms: float
    server_ms: float
    codec_ms: float
    network_ms: float
    latency_ms: float
    energy_mj: float
    top1: float
    drop_points: float
    agreement: float = 1.0   # share of images whose top-1 equals the whole model's
    feasible: bool = True
    why: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _energy_mj(profile: dict, device_ms: float, codec_ms: float, tx_ms: float, total_ms: float) -> float:
    """Device energy: busy at active power while computing/encoding, radio while sending, idle while waiting."""
    p = profile["power"]
    busy = device_ms + codec_ms
    return busy * p["active_w"] + tx_ms * RADIO_W + max(total_ms - busy - tx_ms, 0.0) * p["idle_w"]


def _remote(profile: dict, net: Network, label: str, point: str, enc: str, q: int | None, stats: dict,
            device_ms: float, server_ms: float) -> Option:
    n_classes = profile["num_classes"]
    up = stats["bytes"] + net.request_header_bytes
    down = 4 * n_classes + RESPONSE_HEADER_BYTES
    codec_ms = stats["encode_ms"] + stats["decode_ms"]
    network_ms = net.overhead_ms + net.rtt_ms + net.transfer_ms(up + down)
    total = device_ms + codec_ms + network_ms + server_ms
    energy = _energy_mj(profile, device_ms, stats["encode_ms"], net.transfer_ms(up), total)
    whole = profile["whole"]["top1"]
    return Option(label, point, enc, q, stats["bytes"], device_ms, server_ms, codec_ms, network_ms, total, energy,
                  stats["top1"], (whole - stats["top1"]) * 100, stats["agreement"])


def options(profile: dict, net: Network) -> list[Option]:
    """Every option of a profile under `net`, in the order: device, input encodings, cuts x encodings.
    Whoever runs the model's first layer also preprocesses the image (measured on the host)."""
    whole = profile["whole"]
    pre = profile.get("preprocess_ms", 0.0)
    dev_ms = whole["device"]["ms"] + pre
    out = [Option("device", "device", "", None, 0.0, dev_ms, 0.0, 0.0, 0.0, dev_ms,
                  _energy_mj(profile, dev_ms, 0.0, 0.0, dev_ms), whole["top1"], 0.0)]
    for row in profile["inputs"]:
        label = f"input/{row['encoding']}" + (f"-q{row['quality']}" if row["quality"] else "")
        out.append(_remote(profile, net, label, "input", row["encoding"], row["quality"], row, 0.0, whole["server"]["ms"] + pre))
    for cut in profile["cuts"]:
        for enc, stats in cut["encodings"].items():
            out.append(_remote(profile, net, f"{cut['name']}/{enc}", cut["name"], enc, None, stats,
                               cut["head_device"]["ms"] + pre, cut["tail_server"]["ms"]))
    return out


def choose(opts: list[Option], objective: str = "latency", max_drop: float | None = None,
           allowed: set[str] | None = None, min_agreement: float | None = None) -> Option:
    """Mark infeasible options (accuracy budget, agreement with the whole model in %, not deployed) and return
    the best feasible one."""
    if objective not in OBJECTIVES:
        raise EdgemapError(f"unknown objective {objective!r}; choose from {', '.join(OBJECTIVES)}")
    for o in opts:
        if max_drop is not None and o.drop_points > max_drop + 1e-9:
            o.feasible, o.why = False, f"loses {o.drop_points:.2f} points > {max_drop:g}"
        elif min_agreement is not None and o.agreement * 100 < min_agreement - 1e-9:
            o.feasible, o.why = False, f"agrees with the whole model on {o.agreement:.1%} < {min_agreement:g} %"
        elif allowed is not None and o.label not in allowed and o.point != "device":
            o.feasible, o.why = False, "not in the deployed bundles"
    feasible = [o for o in opts if o.feasible]
    if not feasible:  # all on the device loses nothing, so this only happens with a negative budget
        raise EdgemapError(f"no option keeps the accuracy drop within {max_drop} points and the agreement above {min_agreement} %")
    key = (lambda o: (o.latency_ms, o.bytes_up)) if objective == "latency" else (lambda o: (o.energy_mj, o.latency_ms))
    return min(feasible, key=key)


def plan(profile: dict, net: Network, objective: str = "latency", max_drop: float | None = None,
         allowed: set[str] | None = None, min_agreement: float | None = None) -> tuple[list[Option], Option]:
    """All options under `net` and the best one."""
    opts = options(profile, net)
    return opts, choose(opts, objective, max_drop, allowed, min_agreement)


def flops_baseline(profile: dict, net: Network) -> dict[str, float]:
    """A FLOPs-proportional prediction per option (the comparison the benchmark reports): device and server
    time taken as MACs x (whole-model time / whole-model MACs), transfer as raw body bytes / bandwidth + RTT,
    with no HTTP overhead, headers or codec time."""
    whole = profile["whole"]
    dev_per_mac = whole["device"]["ms"] / max(whole["macs"], 1)
    srv_per_mac = whole["server"]["ms"] / max(whole["macs"], 1)
    out = {"device": whole["device"]["ms"]}
    for row in profile["inputs"]:
        label = f"input/{row['encoding']}" + (f"-q{row['quality']}" if row["quality"] else "")
        out[label] = net.rtt_ms + net.transfer_ms(row["bytes"]) + whole["server"]["ms"]
    for cut in profile["cuts"]:
        head = cut["head_macs"]
        for enc, stats in cut["encodings"].items():
            out[f"{cut['name']}/{enc}"] = (head * dev_per_mac + net.rtt_ms + net.transfer_ms(stats["bytes"])
                                           + (whole["macs"] - head) * srv_per_mac)
    return out


def emulated_device(profile: dict, slowdown: float) -> dict:
    """The profile of a device emulated as this host slowed down k times (SplitClient(device_slowdown=k) waits
    (k - 1) x the median after each local compute): every device-side latency measured here, x k, labelled so."""
    import copy

    if profile["whole"]["device"]["basis"] != "measured":
        raise EdgemapError("an emulated device is this host slowed down: profile with --device host")
    out = copy.deepcopy(profile)
    figs = [out["whole"]["device"]] + [c["head_device"] for c in out["cuts"]]
    for fig in figs:
        fig["ms"] *= slowdown
        fig["basis"] = "measured"
        fig["how"] += f"; x {slowdown:g}: device emulated as this host slowed down {slowdown:g} times"
    out["device"] = f"host x{slowdown:g} (emulated)"
    return out
