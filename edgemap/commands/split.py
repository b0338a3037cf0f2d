"""`edgemap split profile/plan/export/serve/infer`: run a model partly on the device, partly on a server."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgemap.commands.options import CLASSES_OPTION, LABELS_OPTION

WORK = Path("out/split/work")


def _inputs(model: Optional[str], preprocess: Optional[str], data: Optional[Path], limit: int, work: Path,
            classes: Optional[str] = None, labels: Optional[Path] = None):  # noqa: ANN202
    """The model as ONNX and the evaluation images (first `limit`; 0: all), labelled in the model's class order:
    --classes/--labels, else a checkpoint's record or an .onnx file's metadata, else the data's own order."""
    import dataclasses

    from edgemap.commands.evaluate import load_user_data
    from edgemap.data.classes import align_to_model, class_names_option, onnx_class_names
    from edgemap.errors import EdgemapError
    from edgemap.split.source import resolve_source

    src = resolve_source(model, preprocess, work)
    images = load_user_data(data, "test", src.spec)
    given = class_names_option(classes, labels)
    names = given or src.class_names or onnx_class_names(src.onnx_path)
    if names is not None:
        if given and src.class_names is not None and len(given) != len(src.class_names):
            raise EdgemapError(f"--classes names {len(given)} classes, the model outputs {len(src.class_names)} scores")
        images = align_to_model(images, tuple(names), "--classes" if given else src.name)
        src = dataclasses.replace(src, class_names=tuple(names))
    return src, (images.subset(slice(0, limit)) if limit else images)


def _qualities(text: str) -> tuple[int, ...]:
    from edgemap.errors import EdgemapError

    try:
        qs = tuple(int(q) for q in text.split(",") if q.strip())
    except ValueError:
        raise EdgemapError(f"--qualities {text!r}: give integers like 50,75,90") from None
    if not qs or min(qs) < 1 or max(qs) > 100:
        raise EdgemapError(f"--qualities {text!r}: qualities are 1..100")
    return qs


MODEL_HELP = "zoo name with shipped weights (default resnet9s), a .safetensors checkpoint, or an .onnx file"

# options several split commands take, declared once
MODEL_OPTION = typer.Option(None, help=MODEL_HELP)
DEVICE_OPTION = typer.Option("host", help="device profile running the head")
SERVER_OPTION = typer.Option("host", help="device profile running the tail")
DATA_OPTION = typer.Option(None, help="evaluation images (default $EDGEMAP_CIFAR10, else the shipped sample)")
PREPROCESS_OPTION = typer.Option(None, help="user ONNX models: e.g. 'cifar10' or 'resize=48x48,scale=1/255'")
LIMIT_OPTION = typer.Option(1000, help="evaluate on the first N images (0: all)")
QUALITIES_OPTION = typer.Option("50,75,90", help="JPEG/WebP qualities for sending the input")
MIN_AGREEMENT_OPTION = typer.Option(None, help="% of images whose top-1 must equal the whole model's")
WORK_OPTION = typer.Option(WORK, help="cache of exported models, halves and profiles")


def _add_profile(group: typer.Typer) -> None:
    @group.command("profile")
    def profile_cmd(
        model: Optional[str] = MODEL_OPTION,
        device: str = DEVICE_OPTION,
        server: str = SERVER_OPTION,
        data: Optional[Path] = DATA_OPTION,
        preprocess: Optional[str] = PREPROCESS_OPTION,
        classes: Optional[str] = CLASSES_OPTION,
        labels: Optional[Path] = LABELS_OPTION,
        limit: int = LIMIT_OPTION,
        qualities: str = QUALITIES_OPTION,
        threads: int = typer.Option(0, help="ONNX Runtime threads for the measured parts (0: default)"),
        work: Path = WORK_OPTION,
        json_out: Optional[Path] = typer.Option(None, "--json", help="also write the profile as JSON"),
        fresh: bool = typer.Option(False, help="re-measure even when a cached profile exists"),
    ) -> None:
        """Every single-tensor split point: latency of head and tail, bytes per activation encoding, accuracy."""
        from edgemap.core.atomic import write_json
        from edgemap.split.profile import load_or_profile
        from edgemap.split.report import print_profile

        src, images = _inputs(model, preprocess, data, limit, work, classes, labels)
        prof = load_or_profile(src, images, device, server, work, _qualities(qualities), threads, fresh)
        print_profile(prof)
        if json_out:
            write_json(json_out, prof)


def _add_plan(group: typer.Typer) -> None:
    @group.command("plan")
    def plan_cmd(
        model: Optional[str] = MODEL_OPTION,
        device: str = DEVICE_OPTION,
        server: str = SERVER_OPTION,
        bandwidth_mbps: float = typer.Option(..., help="uplink bandwidth, Mbit/s"),
        rtt_ms: float = typer.Option(..., help="round-trip time, ms"),
        overhead_ms: float = typer.Option(1.5, help="HTTP handling per request, ms (measured by split infer --adaptive)"),
        objective: str = typer.Option("latency", help="latency or energy (the device's)"),
        max_accuracy_drop: Optional[float] = typer.Option(None, help="top-1 points an option may lose (default: any)"),
        min_agreement: Optional[float] = MIN_AGREEMENT_OPTION,
        plot: Optional[Path] = typer.Option(None, help="draw predicted latency vs split point per bandwidth (PNG)"),
        show: int = typer.Option(0, help="print only the N best options (0: all)"),
        data: Optional[Path] = DATA_OPTION,
        preprocess: Optional[str] = PREPROCESS_OPTION,
        classes: Optional[str] = CLASSES_OPTION,
        labels: Optional[Path] = LABELS_OPTION,
        limit: int = LIMIT_OPTION,
        qualities: str = QUALITIES_OPTION,
        threads: int = typer.Option(0, help="ONNX Runtime threads for the measured parts"),
        work: Path = WORK_OPTION,
        json_out: Optional[Path] = typer.Option(None, "--json", help="also write every option as JSON"),
        token_file: Optional[Path] = typer.Option(None, help="count the bearer header (sent with every request) of "
                                                  "a server started with --token-file"),
    ) -> None:
        """Every option (all on device, all on server raw/PNG/JPEG/WebP, each split x encoding) and the best."""
        from edgemap.core.atomic import write_json
        from edgemap.deploy.http_gate import read_token
        from edgemap.split.planner import Network, framing_bytes, plan
        from edgemap.split.profile import load_or_profile
        from edgemap.split.report import plot_latency, print_plan

        net = Network(bandwidth_mbps, rtt_ms, overhead_ms, framing_bytes(read_token(token_file) if token_file else None))
        src, images = _inputs(model, preprocess, data, limit, work, classes, labels)
        prof = load_or_profile(src, images, device, server, work, _qualities(qualities), threads)
        opts, best = plan(prof, net, objective, max_accuracy_drop, min_agreement=min_agreement)
        print_plan(opts, best, net, objective, show)
        if plot:
            print(f"plot: {plot_latency(prof, net, plot, max_drop=max_accuracy_drop)}")
        if json_out:
            write_json(json_out, {"network": vars(net), "objective": objective, "max_accuracy_drop": max_accuracy_drop,
                                  "min_agreement": min_agreement,
                                  "best": best.label, "options": [o.to_dict() for o in opts], "profile": prof})


def _add_export(group: typer.Typer) -> None:
    @group.command("export")
    def export_cmd(
        out: Path = typer.Option(..., help="writes OUT/edge (whole model + heads) and OUT/server (whole model + tails)"),
        model: Optional[str] = MODEL_OPTION,
        points: str = typer.Option("all", help="split points to export: all, or c3,c5,..."),
        device: str = typer.Option("host", help="device profile the edge plans with"),
        server: str = typer.Option("host", help="server profile the edge plans with"),
        data: Optional[Path] = typer.Option(None, help="evaluation images for the plan's profile"),
        preprocess: Optional[str] = PREPROCESS_OPTION,
        classes: Optional[str] = CLASSES_OPTION,
        labels: Optional[Path] = LABELS_OPTION,
        limit: int = typer.Option(1000, help="profile on the first N images (0: all)"),
        qualities: str = typer.Option("50,75,90", help="JPEG/WebP qualities the plan considers"),
        work: Path = WORK_OPTION,
    ) -> None:
        """Export the halves as two verified bundles carrying the whole model's hash and the split points."""
        from edgemap.split.bundle import export_bundles
        from edgemap.split.graph import cut_by_name
        from edgemap.split.profile import load_or_profile, write_parts

        src, images = _inputs(model, preprocess, data, limit, work, classes, labels)
        cuts, parts = write_parts(src, work)
        chosen = cuts if points == "all" else [cut_by_name(cuts, p.strip()) for p in points.split(",") if p.strip()]
        prof = load_or_profile(src, images, device, server, work, _qualities(qualities))
        names = {c.name for c in chosen}
        prof = {**prof, "cuts": [c for c in prof["cuts"] if c["name"] in names]}
        written = export_bundles(src, chosen, parts, images.images, prof, out)
        print(f"model {src.name} ({src.sha256[:12]}), split points {', '.join(c.name for c in chosen)}")
        for role, path in written.items():
            print(f"{role}: {path}")


def _add_serve(group: typer.Typer) -> None:
    @group.command("serve")
    def serve_cmd(
        bundle: Path = typer.Argument(..., help="the server bundle (OUT/server of split export)"),
        host: str = typer.Option("127.0.0.1"),
        port: int = typer.Option(8100),
        threads: int = typer.Option(0, help="ONNX Runtime threads (0: default)"),
        shape_mbps: Optional[float] = typer.Option(None, help="listen behind an emulated link of this bandwidth (testing)"),
        shape_rtt_ms: float = typer.Option(0.0, help="round-trip time of the emulated link (with --shape-mbps)"),
        timeout: float = typer.Option(10.0, help="per-request timeout (s)"),
        max_queue: int = typer.Option(64, help="most requests inside the server (per worker); more get 503"),
        token_file: Optional[Path] = typer.Option(None, help="require 'Authorization: Bearer <token>' with the token "
                                                  "in this file (/healthz, /readyz open; `split infer --token-file` "
                                                  "sends it)"),
        tls_cert: Optional[Path] = typer.Option(None, help="serve HTTPS with this PEM certificate (with --tls-key)"),
        tls_key: Optional[Path] = typer.Option(None, help="the certificate's private key (PEM, unencrypted)"),
        workers: int = typer.Option(1, help="server processes on the one port, each with its own sessions"),
    ) -> None:
        """Run the tails (and the whole model for sent images) behind HTTP(S), with /healthz, /readyz, /metrics."""
        from edgemap.deploy.http_gate import read_token
        from edgemap.deploy.serving import Listen
        from edgemap.split.server import TailConfig, serve

        # only from --token-file: $EDGEMAP_SERVE_TOKEN (set for `edgemap serve`) must not lock out `split infer`
        config = TailConfig(threads, read_token(token_file) if token_file else None, timeout, max_queue)
        if shape_mbps is None:
            serve(bundle, config=config, listen=Listen(host, port, tls_cert=tls_cert, tls_key=tls_key, workers=workers))
            return
        import socket

        from edgemap.split.shaping import ShapedLink

        with socket.socket() as s:  # a free port for the server itself; the link takes the public one
            s.bind((host, 0))
            inner = s.getsockname()[1]
        listen = Listen(host, inner, tls_cert=tls_cert, tls_key=tls_key, workers=workers)
        with ShapedLink(host, inner, shape_mbps, shape_rtt_ms, listen_host=host, listen_port=port):
            print(f"emulated link on port {port}: {shape_mbps:g} Mbps, RTT {shape_rtt_ms:g} ms", flush=True)
            serve(bundle, config=config, listen=listen)


def _add_infer(group: typer.Typer) -> None:
    @group.command("infer")
    def infer_cmd(
        bundle: Path = typer.Argument(..., help="the edge bundle (OUT/edge of split export)"),
        images: list[Path] = typer.Argument(..., help="image files"),
        server: Optional[str] = typer.Option(None, help="split server URL, e.g. http://127.0.0.1:8100"),
        option: str = typer.Option("plan", help="plan (best for --bandwidth-mbps/--rtt-ms), device, input/jpeg-q75, c5/int8 ..."),
        bandwidth_mbps: float = typer.Option(10.0, help="assumed uplink for --option plan (--adaptive measures it)"),
        rtt_ms: float = typer.Option(20.0, help="assumed round-trip for --option plan"),
        objective: str = typer.Option("latency", help="latency or energy"),
        max_accuracy_drop: Optional[float] = typer.Option(0.5, help="top-1 points the plan may lose"),
        min_agreement: Optional[float] = MIN_AGREEMENT_OPTION,
        adaptive: bool = typer.Option(False, help="measure bandwidth and RTT from the requests and re-plan"),
        fallback: str = typer.Option("none", help="local: run the whole model here when the server is down, slow or wrong"),
        timeout_s: float = typer.Option(5.0, help="deadline of every request"),
        threads: int = typer.Option(0, help="ONNX Runtime threads"),
        json_out: bool = typer.Option(False, "--json", help="print one JSON line per image"),
        token_file: Optional[Path] = typer.Option(None, help="send 'Authorization: Bearer <token>' with the token in "
                                                  "this file (a server started with --token-file)"),
        ca_file: Optional[Path] = typer.Option(None, help="for an https:// server: trust this PEM certificate (e.g. "
                                               "the server's self-signed --tls-cert); else the system's CAs"),
    ) -> None:
        """Run the head here, the tail on the server; print each image's top class and where it ran."""
        from edgemap.deploy.http_gate import read_token
        from edgemap.split.adaptive import run_files

        if fallback not in ("none", "local"):
            from edgemap.errors import EdgemapError

            raise EdgemapError(f"--fallback {fallback!r}: choose none or local")
        run_files(bundle, images, server, option, bandwidth_mbps, rtt_ms, objective, max_accuracy_drop, adaptive,
                  fallback == "local", timeout_s, threads, json_out, min_agreement,
                  read_token(token_file) if token_file else None, ca_file)


def register(app: typer.Typer) -> None:
    """Add the `split` command group to the CLI."""
    group = typer.Typer(no_args_is_help=True, help="Split a model between the device and a server: profile, plan, "
                                                   "export the halves, serve the tail, infer from the edge.")
    app.add_typer(group, name="split")
    _add_profile(group)
    _add_plan(group)
    _add_export(group)
    _add_serve(group)
    _add_infer(group)
