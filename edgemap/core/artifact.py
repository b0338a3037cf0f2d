"""The one model type every stage passes on: a file with its format, precision, input spec and lineage.

An Artifact is made by a source loader (the user's file) or by a pass (its parent artifact + the
pass config that made it). Its sha256 covers every file the format needs (a checkpoint's JSON
sidecar, an OpenVINO IR's .bin), so two artifacts with the same digest are the same model, and
`cache_key(parent, config)` names the artifact a pass would make: a search and its replay that
ask for the same pass on the same parent share one file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

# format -> file suffix of its main file
SUFFIX = {"checkpoint": ".safetensors", "onnx": ".onnx", "openvino": ".xml", "litert": ".tflite", "pt2": ".pt2"}
# formats that hold a torch model (a pass that needs torch can start from any of them)
TORCH_FORMATS = ("checkpoint", "pt2", "entry_point")


def model_files(path: str | Path, fmt: str) -> list[Path]:
    """The files one model consists of: the main file plus what it needs beside it."""
    path = Path(path)
    if fmt == "openvino":
        return [path, path.with_suffix(".bin")]
    if fmt == "checkpoint":
        return [path, path.with_suffix(".json")]
    return [path]


def file_sha256(paths: list[Path]) -> str:
    """sha256 over the bytes of `paths` in order (each file's length first, so two files never blur into one)."""
    h = hashlib.sha256()
    for p in paths:
        data = p.read_bytes()
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


@dataclass
class Artifact:
    """A model file and what is known about it. `made_by` is the full pass config ({"type": ..., ...}) or, for a
    source, the model reference ({"path": ...} / {"entry_point": ...}); `parent` is the artifact it came from."""

    path: Path | None  # None for an entry point without weights (the code is the model)
    format: str
    precision: str = "fp32"
    input_shape: tuple[int, ...] = ()
    made_by: dict = field(default_factory=dict)
    parent: "Artifact | None" = None
    sha256: str = ""
    metrics: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.sha256:
            self.sha256 = self.digest()

    def digest(self) -> str:
        """sha256 of the model's files; an entry point hashes its reference (module path + weights digest)."""
        if self.format == "entry_point":
            h = hashlib.sha256(json.dumps(self.made_by, sort_keys=True).encode())
            if self.path is not None:
                h.update(file_sha256([Path(self.path)]).encode())
            return h.hexdigest()
        return file_sha256(model_files(self.path, self.format))  # type: ignore[arg-type]

    def files(self) -> list[Path]:
        """The model's files on disk."""
        return [] if self.path is None else model_files(self.path, self.format)

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files())

    def lineage(self) -> list["Artifact"]:
        """This artifact and its ancestors, the source first."""
        chain, a = [], self
        while a is not None:
            chain.append(a)
            a = a.parent
        return chain[::-1]

    def to_dict(self) -> dict:
        """JSON-ready record (parent by digest)."""
        return {"path": str(self.path) if self.path else None, "format": self.format, "precision": self.precision,
                "input_shape": list(self.input_shape), "made_by": self.made_by, "sha256": self.sha256,
                "parent": self.parent.sha256 if self.parent else None, "metrics": self.metrics}


def cache_key(parent_sha256: str, config: dict, data_key: str = "") -> str:
    """What determines a pass's output: its parent's digest, its full config and (for data passes) the data."""
    text = json.dumps({"parent": parent_sha256, "config": config, "data": data_key}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]
