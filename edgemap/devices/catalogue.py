"""Where profiles are found: the shipped catalogue, directories in $EDGEMAP_DEVICES, or a file path.

A profile named NAME lives in NAME.yaml. Directories in $EDGEMAP_DEVICES (separated like PATH)
are searched before the shipped ones, so a user's file shadows a shipped profile of the same name.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgemap.devices.profile import DeviceProfile, load_profile
from edgemap.errors import EdgemapError

ENV_VAR = "EDGEMAP_DEVICES"
SHIPPED_DIR = Path(__file__).resolve().parent / "profiles"


def search_dirs() -> list[Path]:
    """User directories from $EDGEMAP_DEVICES (in order), then the shipped catalogue."""
    user = [Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    for d in user:
        if not d.is_dir():
            raise EdgemapError(f"${ENV_VAR} names {d}, which is not a directory")
    return user + [SHIPPED_DIR]


def profile_files() -> dict[str, Path]:
    """name -> file for every profile visible, earlier directories winning."""
    found: dict[str, Path] = {}
    for d in search_dirs():
        for f in sorted(d.glob("*.yaml")):
            found.setdefault(f.stem, f)
    return found


def load_named(path: Path) -> DeviceProfile:
    """Load a profile file and check that its `name` matches the file name."""
    prof = load_profile(path)
    if prof.name != path.stem:
        raise EdgemapError(f"{path}: profile name {prof.name!r} does not match the file name {path.stem!r}")
    return prof


def list_profiles() -> list[DeviceProfile]:
    """Every visible profile, sorted by name (a malformed file is an error naming it)."""
    return [load_named(f) for _, f in sorted(profile_files().items())]


def resolve(device: str | Path) -> DeviceProfile:
    """A profile from a name in the catalogue or from a path to a YAML file."""
    text = str(device)
    if text.endswith((".yaml", ".yml")) or os.sep in text:
        path = Path(text)
        if not path.is_file():
            raise EdgemapError(f"{path}: device profile file not found")
        return load_profile(path)
    files = profile_files()
    if text not in files:
        raise EdgemapError(f"unknown device {text!r}; known devices: {', '.join(sorted(files))} "
                           f"(or pass a path to a profile YAML)")
    return load_named(files[text])
