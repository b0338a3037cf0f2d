"""One mapping to try: pruning ratio, precision, calibration, backend, threads."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Candidate:
    """One mapping to try. `calibration` is only meaningful for int8 (else "none")."""

    prune_ratio: float = 0.0
    precision: str = "fp32"
    calibration: str = "none"
    backend: str = "onnxruntime"
    threads: int = 1

    def key(self) -> str:
        """A stable, readable identity (cache key and label)."""
        cal = f"-{self.calibration}" if self.precision == "int8" else ""
        return f"p{self.prune_ratio:g}-{self.precision}{cal}-{self.backend}-t{self.threads}"

    def artifact_key(self) -> str:
        """What determines the model file (threads do not)."""
        return self.key().rsplit("-t", 1)[0]

    def to_dict(self) -> dict:
        return asdict(self)
