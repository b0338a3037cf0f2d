"""Reading the small YAML files users hand us (recipes, preprocessing), with one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgemap.errors import EdgemapError


def read_yaml(path: str | Path, what: str) -> Any:
    """Parsed YAML (or JSON) from `path`; a missing file or bad syntax is an EdgemapError naming `what`."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise EdgemapError(f"{path}: {what} not found")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise EdgemapError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
