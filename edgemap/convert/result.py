"""What every conversion returns, and the shared step that runs the parity gate on a fresh session."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgemap.convert.parity import DEFAULT_TOLERANCES, ParityReport, Tolerance, compare, gate, run_batches
from edgemap.convert.source import Source
from edgemap.runtime.registry import load_session


@dataclass
class ConversionResult:
    """A written model file, how it was made, and how closely it follows its source."""

    path: Path
    format: str
    precision: str
    source: str
    parity: ParityReport
    size_bytes: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"path": str(self.path), "format": self.format, "precision": self.precision, "source": self.source,
                "parity": self.parity.to_dict(), "size_bytes": self.size_bytes, "seconds": round(self.seconds, 2),
                "notes": self.notes}


def verify(src: Source, backend: str, candidate: Path, data: tuple[np.ndarray, np.ndarray | None],
           precision: str, tolerance: Tolerance | None, what: str) -> ParityReport:
    """Load `candidate` with `backend`, compare it with the source on `data`, raise if it fails the gate."""
    x, labels = data
    tolerance = tolerance or DEFAULT_TOLERANCES[precision]
    with load_session(backend, candidate, threads=1) as session:
        got = run_batches(session.run, x, src.fixed_batch or 100)
    report = compare(run_batches(src.reference, x, src.fixed_batch or 100), got, labels, tolerance)
    gate(report, what)
    return report
