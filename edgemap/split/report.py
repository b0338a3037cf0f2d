"""Tables and the plot of `edgemap split profile` and `edgemap split plan`."""

from __future__ import annotations

from pathlib import Path

from edgemap.split.planner import RADIO_W, Network, Option, options

PLOT_BANDWIDTHS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 1000.0)


def _basis(fig: dict) -> str:
    return f"{fig['ms']:.3f} ({fig['basis'][0]})"


def print_profile(profile: dict) -> None:
    """One row per split point: latency of each half, bytes per encoding, INT8 accuracy; then the input encodings."""
    from rich.table import Table

    from edgemap.core.console import table_console

    whole = profile["whole"]
    console = table_console()
    t = Table(title=f"{profile['model']}: split points (head on {profile['device']}, tail on {profile['server']}; "
                    f"ms, (m)easured here / (e)stimated); top-1 on {profile['data']['images']} images of {profile['data']['source']}")
    for col in ("point", "tensor", "op", "shape", "head ms", "tail ms", "FP32 B", "FP16 B", "INT8 B", "INT8+zstd B",
                "INT8 top-1", "INT8 agree"):
        t.add_column(col, overflow="fold")
    for c in profile["cuts"]:
        e = c["encodings"]
        t.add_row(c["name"], c["tensor"], c["op"] + ("" if not c["nonnegative"] else " (>=0)"), "x".join(map(str, c["shape"])),
                  _basis(c["head_device"]), _basis(c["tail_server"]), f"{e['fp32']['bytes']:.0f}", f"{e['fp16']['bytes']:.0f}",
                  f"{e['int8']['bytes']:.0f}", f"{e['int8-zstd']['bytes']:.0f}", f"{e['int8']['top1']:.2%}",
                  f"{e['int8']['agreement']:.2%}")
    console.print(t)
    it = Table(title=f"sending the input instead (whole model: {_basis(whole['device'])} on the device, "
                     f"{_basis(whole['server'])} on the server, top-1 {whole['top1']:.2%})")
    for col in ("encoding", "bytes", "top-1", "agreement", "encode+decode ms"):
        it.add_column(col)
    for r in profile["inputs"]:
        it.add_row(r["encoding"] + (f" q{r['quality']}" if r["quality"] else ""), f"{r['bytes']:.0f}", f"{r['top1']:.2%}",
                   f"{r['agreement']:.2%}", f"{r['encode_ms'] + r['decode_ms']:.3f}")
    console.print(it)


def print_plan(opts: list[Option], best: Option, net: Network, objective: str, show: int = 0) -> None:
    """Every option sorted by the objective (or the first `show`), the best marked."""
    from rich.table import Table

    from edgemap.core.console import table_console

    key = (lambda o: o.latency_ms) if objective == "latency" else (lambda o: o.energy_mj)
    rows = sorted(opts, key=lambda o: (not o.feasible, key(o)))
    t = Table(title=f"options at {net.bandwidth_mbps:g} Mbps, RTT {net.rtt_ms:g} ms, HTTP overhead {net.overhead_ms:g} ms, "
                    f"{net.request_header_bytes} B of request headers (predicted; energy is the device's, radio "
                    f"{RADIO_W:g} W assumed)")
    for col in ("", "option", "bytes sent", "device ms", "network ms", "server ms", "latency ms", "energy mJ", "top-1",
                "drop pts", "agree", "note"):
        t.add_column(col, overflow="fold")
    for o in rows[:show or None]:
        t.add_row("*" if o is best else "", o.label, f"{o.bytes_up:.0f}", f"{o.device_ms + o.codec_ms:.3f}",
                  f"{o.network_ms:.2f}", f"{o.server_ms:.3f}", f"{o.latency_ms:.2f}", f"{o.energy_mj:.3f}", f"{o.top1:.2%}",
                  f"{o.drop_points:+.2f}", f"{o.agreement:.1%}", o.why)
    console = table_console()
    console.print(t)
    console.print(f"best ({objective}): {best.label}: {best.latency_ms:.2f} ms, {best.energy_mj:.3f} mJ, "
                  f"{best.bytes_up:.0f} B sent, top-1 {best.top1:.2%}")


def plot_latency(profile: dict, net: Network, path: Path, bandwidths: tuple[float, ...] = PLOT_BANDWIDTHS,
                 max_drop: float | None = None) -> Path:
    """Predicted latency vs split point (input, c1..cN, device), one line per bandwidth, best encoding per point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgemap.core.atomic import atomic_path

    points = ["input"] + [c["name"] for c in profile["cuts"]] + ["device"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(points)), 4.5))
    for bw in sorted(set(bandwidths) | {net.bandwidth_mbps}):
        opts = options(profile, Network(bw, net.rtt_ms, net.overhead_ms, net.request_header_bytes))
        best = {p: min((o.latency_ms for o in opts if o.point == p
                        and (max_drop is None or o.drop_points <= max_drop)), default=float("nan")) for p in points}
        ax.plot(range(len(points)), [best[p] for p in points], marker="o", label=f"{bw:g} Mbps")
    ax.set_xticks(range(len(points)), points, rotation=60)
    ax.set_yscale("log")
    ax.set_xlabel("split point (input = all on the server, device = all on the device)")
    ax.set_ylabel("predicted end-to-end latency (ms, best encoding)")
    ax.set_title(f"{profile['model']}: {profile['device']} -> {profile['server']}, RTT {net.rtt_ms:g} ms")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
