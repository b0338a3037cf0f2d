"""Edge-side commands: `edgemap bundle verify|show|archive|keygen|sign`, `edgemap infer` (files or a watched
folder), `edgemap serve`, `edgemap deploy`. No torch."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

bundle_app = typer.Typer(no_args_is_help=True, help="Inspect, verify and sign deployment bundles.")
PUBLIC_KEY_HELP = "Ed25519 public key (PEM): refuse the bundle unless it carries a valid signature by this key"


@bundle_app.command("verify")
def verify_cmd(bundle: Path, threads: int = typer.Option(0),
               public_key: Optional[Path] = typer.Option(None, help=PUBLIC_KEY_HELP)) -> None:
    """Check hashes (and the signature), load the model with its runtime and reproduce the host's self-test."""
    from rich.console import Console

    from edgemap.deploy.edge import EdgeModel

    model = EdgeModel(bundle, threads=threads, public_key=public_key)
    st = model.selftest or {}
    signed = f"signature valid for {public_key}; " if public_key else ""
    Console().print(f"{bundle}: OK: {signed}{len(model.manifest['files'])} files match their sha256; "
                    f"{model.manifest['backend']} loads the model; self-test top-1 agreement "
                    f"{st.get('top1_agreement', 0):.0%} on {st.get('images')} images (max |diff| {st.get('max_abs_diff', 0):.2e})")
    model.close()


@bundle_app.command("show")
def show_cmd(bundle: Path) -> None:
    """Print a bundle's manifest (mapping, metrics, preprocessing, files)."""
    import json

    from rich.console import Console

    from edgemap.deploy.bundle import read_manifest

    Console().print_json(json.dumps(read_manifest(bundle)))


@bundle_app.command("archive")
def archive_cmd(bundle: Path, out: Optional[Path] = typer.Option(None, help="default: BUNDLE.tar.gz")) -> None:
    """Pack a verified-format bundle into a .tar.gz for copying to a device."""
    from edgemap.deploy.bundle import archive, read_manifest

    read_manifest(bundle)
    print(archive(bundle, out or Path(f"{bundle}.tar.gz")))


@bundle_app.command("keygen")
def keygen_cmd(out: Path = typer.Argument(..., help="private key file to write (the public key goes to OUT.pub)")) -> None:
    """Make an Ed25519 key pair for signing bundles (keep the private key off the devices)."""
    from edgemap.deploy.signing import generate_keypair

    private, public = generate_keypair(out)
    print(f"private key: {private} (mode 0600)\npublic key:  {public} (copy this one to the devices)")


@bundle_app.command("sign")
def sign_cmd(bundle: Path, key: Path = typer.Option(..., help="Ed25519 private key (PEM) from `edgemap bundle keygen`")) -> None:
    """Sign a bundle: its files are checked against the manifest, then the manifest is signed (signature.json)."""
    from edgemap.deploy.bundle import sign_bundle

    print(f"{sign_bundle(bundle, key)}: signed")


RECORD_HELP = ("record each prediction in the results store (global --store / $EDGEMAP_STORE; 'off' records "
               "nothing): `edgemap report --deployment BUNDLE` plots them")
RETENTION_HELP = "most predictions kept per bundle in the store (the oldest are deleted)"


def _infer_files(bundle: Path, images: List[Path], top_k: int, threads: int, json_out: bool,
                 public_key: Optional[Path], recorder) -> None:  # noqa: ANN001 - PredictionRecorder | None
    import json

    from edgemap.deploy.edge import EdgeModel

    model = EdgeModel(bundle, threads=threads, public_key=public_key)
    where = model.bundle.resolve()
    try:
        if recorder is not None:
            recorder.start(where)
        for path in images:  # one at a time: each is timed, printed and recorded as it is done
            result = model.classify_file(path, top_k)
            pred = result.prediction
            if recorder is not None:
                recorder({"bundle": where, "input": str(path.absolute()), "input_bytes": result.data,
                          "latency_ms": result.latency_ms, "image": result.image, **pred.to_dict()})
            if json_out:
                print(json.dumps({"file": str(path), **pred.to_dict()}))
            else:
                alts = ", ".join(f"{label} {p:.1%}" for label, p in zip(pred.labels, pred.probabilities))
                print(f"{path}: {pred.labels[0]}  ({alts})")
    finally:
        if recorder is not None:
            recorder.close()
        model.close()


def _infer_watch(bundle: Path, folder: Path, out: Optional[Path], fmt: Optional[str], top_k: int, threads: int,
                 interval: float, once: bool, public_key: Optional[Path], recorder) -> None:  # noqa: ANN001
    import signal
    import sys

    from edgemap.deploy.edge import EdgeModel
    from edgemap.deploy.watch import ResultLog, watch_folder
    from edgemap.errors import EdgemapError

    if out is None:
        raise EdgemapError("--watch needs --out FILE (.jsonl or .csv) to append the results to")
    model = EdgeModel(bundle, threads=threads, public_key=public_key)
    log = ResultLog(out, fmt)
    stop = []
    signal.signal(signal.SIGTERM, lambda sig, frame: stop.append(sig))
    print(f"edgemap infer: watching {folder} -> {out} ({log.fmt}); Ctrl-C or SIGTERM stops", file=sys.stderr, flush=True)
    try:
        if recorder is not None:
            recorder.start(model.bundle)
        n = watch_folder(model, folder, log, top_k, interval, once, should_stop=lambda: bool(stop),
                         on_result=recorder)
    except KeyboardInterrupt:
        n = None
    finally:
        log.close()
        if recorder is not None:
            recorder.close()
        model.close()
    print(f"edgemap infer: stopped{'' if n is None else f' after {n} images'}; results in {out}", file=sys.stderr)


def infer_cmd(bundle: Path, images: List[Path] = typer.Argument(..., help="image files (PNG/JPEG/BMP), or one "
                                                                  "folder with --watch"),
              top_k: int = typer.Option(3), threads: int = typer.Option(0),
              json_out: bool = typer.Option(False, "--json", help="print JSON lines"),
              watch: bool = typer.Option(False, "--watch", help="classify images as they arrive in the folder"),
              out: Optional[Path] = typer.Option(None, help="--watch: file to append results to (.jsonl or .csv)"),
              fmt: Optional[str] = typer.Option(None, "--format", help="--watch: jsonl or csv (default: from --out)"),
              interval: float = typer.Option(0.5, help="--watch: seconds between polls of the folder"),
              once: bool = typer.Option(False, help="--watch: classify what is there now, then exit"),
              public_key: Optional[Path] = typer.Option(None, help=PUBLIC_KEY_HELP),
              record: bool = typer.Option(True, "--record/--no-record", help=RECORD_HELP),
              retention: int = typer.Option(100_000, help=RETENTION_HELP)) -> None:
    """Classify image files with a bundle, or watch a drop folder (preprocessing from the bundle; verified before use)."""
    from edgemap.deploy.recording import open_recorder
    from edgemap.errors import EdgemapError

    recorder = open_recorder(record, bundle, retention)

    if watch:
        if len(images) != 1 or not images[0].is_dir():
            raise EdgemapError("--watch takes one folder: edgemap infer BUNDLE FOLDER --watch --out results.jsonl")
        _infer_watch(bundle, images[0], out, fmt, top_k, threads, interval, once, public_key, recorder)
    else:
        _infer_files(bundle, images, top_k, threads, json_out, public_key, recorder)


TLS_HELP = "serve HTTPS with this PEM certificate (with --tls-key; a self-signed one works for a private network)"


def serve_cmd(bundle: Path, host: str = typer.Option("127.0.0.1", help="0.0.0.0 to serve other machines"),
              port: int = typer.Option(8000), threads: int = typer.Option(0, help="runtime threads (0: default)"),
              top_k: int = typer.Option(3),
              max_body_mb: float = typer.Option(4.0, help="largest request body (MiB)"),
              max_pixels: int = typer.Option(4096 * 4096, help="largest image (W x H), checked before decoding"),
              max_images: int = typer.Option(64, help="most images in one request"),
              max_batch: int = typer.Option(32, help="most images per inference batch (1: batching off)"),
              max_wait_ms: float = typer.Option(2.0, help="longest wait for a fuller batch while requests arrive"),
              max_queue: int = typer.Option(128, help="most requests inside the server (per worker); more get 503 "
                                            "+ Retry-After"),
              timeout: float = typer.Option(10.0, help="per-request timeout (s)"),
              token_file: Optional[Path] = typer.Option(None, help="require 'Authorization: Bearer <token>' with the "
                                                        "token in this file (or set $EDGEMAP_SERVE_TOKEN)"),
              public_key: Optional[Path] = typer.Option(None, help=PUBLIC_KEY_HELP),
              record: bool = typer.Option(True, "--record/--no-record", help=RECORD_HELP),
              retention: int = typer.Option(100_000, help=RETENTION_HELP),
              http: str = typer.Option("auto", help="HTTP parser: auto (httptools if installed), h11, httptools"),
              loop: str = typer.Option("auto", help="event loop: auto (= asyncio), asyncio, uvloop"),
              tls_cert: Optional[Path] = typer.Option(None, help=TLS_HELP),
              tls_key: Optional[Path] = typer.Option(None, help="the certificate's private key (PEM, unencrypted)"),
              workers: int = typer.Option(1, help="server processes on the one port, each with its own model and "
                                          "batcher (/metrics sums them; SIGHUP reloads each)")) -> None:
    """Serve a bundle over HTTP(S): POST /v1/predict, GET /v1/model, /healthz, /readyz, /metrics, /docs."""
    from edgemap.deploy.batcher import BatchConfig
    from edgemap.deploy.http_gate import read_token
    from edgemap.deploy.payload import Limits
    from edgemap.deploy.server import Recording, ServeConfig, serve
    from edgemap.deploy.serving import Listen

    config = ServeConfig(threads=threads, top_k=top_k, request_timeout_s=timeout, token=read_token(token_file),
                         public_key=public_key, http=http, loop=loop,
                         limits=Limits(int(max_body_mb * (1 << 20)), max_pixels, max_images),
                         batching=BatchConfig(max_batch, max_wait_ms, max_queue))
    listen = Listen(host, port, http, loop, tls_cert, tls_key, workers)
    serve(bundle, config=config, recording=Recording(record, retention), listen=listen)


def deploy_cmd(bundle: Optional[Path] = typer.Argument(None, help="bundle to install"),
               to: Optional[Path] = typer.Option(None, "--to", help="device directory (DIR/current is the bundle)"),
               rollback: Optional[Path] = typer.Option(None, "--rollback", help="device directory to roll back"),
               public_key: Optional[Path] = typer.Option(None, help=PUBLIC_KEY_HELP),
               threads: int = typer.Option(0)) -> None:
    """Install a bundle atomically (verified + self-tested beside the old one, then swapped in), or roll back."""
    import json

    from edgemap.deploy.install import install
    from edgemap.deploy.install import rollback as do_rollback
    from edgemap.errors import EdgemapError

    if (rollback is None) == (bundle is None or to is None):
        raise EdgemapError("use `edgemap deploy BUNDLE --to DIR` or `edgemap deploy --rollback DIR`")
    record = do_rollback(rollback) if rollback is not None else install(bundle, to, public_key, threads)
    print(json.dumps(record))


def register(app: typer.Typer) -> None:
    """Add `bundle`, `infer`, `serve` and `deploy` to the CLI."""
    app.add_typer(bundle_app, name="bundle")
    app.command("infer")(infer_cmd)
    app.command("serve")(serve_cmd)
    app.command("deploy")(deploy_cmd)
