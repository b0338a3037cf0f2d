"""What every compression pass reports: size, parameters, MACs, accuracy and latency, before -> after."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator


@dataclass
class CompressionReport:
    """Before -> after figures of one pass. Absent figures stay None; `notes` say what a number does not mean."""

    technique: str
    config: dict
    output: str | None = None
    params: tuple[int | None, int | None] = (None, None)
    macs: tuple[int | None, int | None] = (None, None)
    file_bytes: tuple[int | None, int | None] = (None, None)
    accuracy: dict = field(default_factory=dict)  # {"before": {...EvalResult.to_dict()}, "after": {...}}
    latency: dict = field(default_factory=dict)  # {"before": summarize(...), "after": ..., "speedup": x}
    wall_s: float = 0.0
    extra: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"technique": self.technique, "config": self.config, "output": self.output,
                "params": list(self.params), "macs": list(self.macs), "file_bytes": list(self.file_bytes),
                "accuracy": self.accuracy, "latency": self.latency, "wall_s": round(self.wall_s, 2),
                "extra": self.extra, "notes": self.notes}

    def lines(self) -> list[str]:
        """Human-readable summary, one figure per line."""
        out = [f"{self.technique}: {self.output or '(in memory)'}  ({self.wall_s:.1f} s)"]
        for label, pair in (("parameters", self.params), ("MACs", self.macs), ("file bytes", self.file_bytes)):
            if pair[0] is not None or pair[1] is not None:
                out.append(f"  {label:<11} {_fmt(pair[0])} -> {_fmt(pair[1])}{_ratio(pair)}")
        if self.accuracy:
            b, a = self.accuracy.get("before") or {}, self.accuracy.get("after") or {}
            out.append(f"  top-1       {_pct(b.get('top1'))} -> {_pct(a.get('top1'))}"
                       f"  (exact: {_pct(b.get('top1_exact'))} -> {_pct(a.get('top1_exact'))}, n={a.get('n', b.get('n'))})")
        if self.latency:
            b, a = self.latency.get("before", {}), self.latency.get("after", {})
            out.append(f"  latency b=1 {b.get('p50_ms', float('nan')):.3f} -> {a.get('p50_ms', float('nan')):.3f} ms (p50)"
                       f"  speedup x{self.latency.get('speedup', float('nan')):.2f}")
        out += self._extra_lines()
        out += [f"  note: {n}" for n in self.notes]
        return out

    def _extra_lines(self) -> list[str]:
        """Integer kernels the runtime executes, what accuracy control did, the teacher a pruned model learned from."""
        out = []
        if "int8" in self.extra:
            s = self.extra["int8"]
            out.append(f"  runtime     {s['integer_ops']} integer kernels {s['integer_by_type']}, "
                       f"{s['float_compute_ops']} float compute kernels {s['float_by_type'] or ''}")
        if "accuracy_control" in self.extra:
            c = self.extra["accuracy_control"]
            out.append(f"  acc. ctrl.  drop {c['best_drop']:.2f} (max {c['max_drop']}) {'met' if c['met'] else 'NOT met'}; "
                       f"kept in float: {', '.join(c['excluded']) or 'none'}")
        if self.extra.get("teacher_accuracy"):
            out.append(f"  teacher     top-1 {_pct(self.extra['teacher_accuracy']['top1'])} (the mirror-averaged teacher "
                       "the fine-tuning distilled from)")
        if "ptq_static_int8_accuracy" in self.extra and self.extra["ptq_static_int8_accuracy"]:
            out.append(f"  static PTQ  top-1 {self.extra['ptq_static_int8_accuracy']['top1']:.2f}% (same data, for comparison)")
        return out


def _fmt(v: int | None) -> str:
    return "?" if v is None else f"{v:,}"


def _pct(v: float | None) -> str:
    return "?" if v is None else f"{v:.2f}%"


def _ratio(pair: tuple[int | None, int | None]) -> str:
    if pair[0] and pair[1]:
        r = pair[0] / pair[1]
        return f"  (x{r:.2f} smaller)" if r >= 1 else f"  (x{1 / r:.2f} larger)"
    return ""


def file_size(path: str | Path | None) -> int | None:
    """Size of a file in bytes, None when there is no file."""
    return Path(path).stat().st_size if path and Path(path).is_file() else None


@contextmanager
def timed(report: CompressionReport) -> Iterator[None]:
    """Record the wall time of the block in report.wall_s."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        report.wall_s = time.perf_counter() - t0
