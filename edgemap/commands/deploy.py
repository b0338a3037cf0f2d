"""Edge-side commands: `edgemap bundle verify|pack-info`, `edgemap infer`, `edgemap serve`. No torch."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

bundle_app = typer.Typer(no_args_is_help=True, help="Inspect and verify deployment bundles.")


@bundle_app.command("verify")
def verify_cmd(bundle: Path, threads: int = typer.Option(0)) -> None:
    """Check hashes, load the model with its runtime and reproduce the host's self-test outputs."""
    from rich.console import Console

    from edgemap.deploy.edge import EdgeModel

    model = EdgeModel(bundle, threads=threads)
    st = model.selftest or {}
    Console().print(f"{bundle}: OK: {len(model.manifest['files'])} files match their sha256; {model.manifest['backend']} loads "
                    f"the model; self-test top-1 agreement {st.get('top1_agreement', 0):.0%} on {st.get('images')} images "
                    f"(max |diff| {st.get('max_abs_diff', 0):.2e})")
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


def register(app: typer.Typer) -> None:
    """Add `bundle`, `infer` and `serve` to the CLI."""
    app.add_typer(bundle_app, name="bundle")

    @app.command("infer")
    def infer_cmd(bundle: Path, images: List[Path] = typer.Argument(..., help="image files (PNG/JPEG/BMP)"),
                  top_k: int = typer.Option(3), threads: int = typer.Option(0),
                  json_out: bool = typer.Option(False, "--json", help="print JSON lines")) -> None:
        """Classify image files with a bundle (preprocessing from the bundle; verified before use)."""
        import json

        from edgemap.deploy.edge import EdgeModel

        model = EdgeModel(bundle, threads=threads)
        for path, pred in zip(images, model.classify_files(images, top_k)):
            if json_out:
                print(json.dumps({"file": str(path), **pred.to_dict()}))
            else:
                alts = ", ".join(f"{label} {p:.1%}" for label, p in zip(pred.labels, pred.probabilities))
                print(f"{path}: {pred.labels[0]}  ({alts})")
        model.close()

    @app.command("serve")
    def serve_cmd(bundle: Path, host: str = typer.Option("127.0.0.1"), port: int = typer.Option(8000),
                  threads: int = typer.Option(0)) -> None:
        """Serve a bundle over HTTP: GET /health, GET /info, POST /predict (image bytes or JSON pixels)."""
        from edgemap.deploy.server import serve

        serve(bundle, host, port, threads)
