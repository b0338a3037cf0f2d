"""The default model shipped inside the package (trained on full CIFAR-10; see benchmarks/results)."""

from __future__ import annotations

from pathlib import Path

from edgemap.errors import EdgemapError

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "resnet9s"


def shipped_checkpoint(name: str = DEFAULT_MODEL) -> Path:
    """Path of a shipped checkpoint's .safetensors file (its .json sidecar lies beside it)."""
    path = WEIGHTS_DIR / f"{name}.safetensors"
    if not path.is_file():
        shipped = sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors"))
        raise EdgemapError(f"no shipped weights for {name!r}; shipped: {', '.join(shipped) or 'none'}")
    return path
