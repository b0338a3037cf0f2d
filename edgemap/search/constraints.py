"""What a mapping is judged on: the objectives the search minimises and the constraints it must meet.

Kept apart from the search's heavier modules so that the command line declares `edgemap map`'s options from
MapOptions (and its Constraints) without importing the runtimes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from edgemap.errors import EdgemapError

OBJECTIVES = {"latency": "latency_ms", "energy": "energy_mj", "size": "size_bytes"}  # --objective -> the figure minimised


def fields_of(cls: type, d: dict, what: str, ignore: tuple[str, ...] = ()) -> dict:
    """`d` restricted to `cls`'s fields; a key that is neither a field nor in `ignore` is refused."""
    if not isinstance(d, dict):
        raise EdgemapError(f"{what}: expected a mapping, got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names - set(ignore))
    if unknown:
        raise EdgemapError(f"{what}: unknown field(s) {', '.join(unknown)}")
    return {k: v for k, v in d.items() if k in names}


@dataclass(frozen=True)
class Constraints:
    """Limits a mapping must meet; None means no limit. (Each field's help is the CLI option's.)

    violations/slack read a TrialMetrics (edgemap.search.records)."""

    max_accuracy_drop: float | None = field(default=1.0, metadata={"help": "points of top-1 the mapping may lose"})
    max_latency_ms: float | None = field(default=None, metadata={"help": "latency limit on the device"})
    max_ram_mb: float | None = field(default=None, metadata={"help": "peak RAM limit on the device"})

    def violations(self, m) -> tuple[str, ...]:  # noqa: ANN001 - TrialMetrics
        """Human-readable reasons `m` fails; empty when it fits."""
        out = list(m.device_violations)
        if self.max_accuracy_drop is not None and m.accuracy_drop > self.max_accuracy_drop:
            out.append(f"accuracy drop {m.accuracy_drop:.2f} > {self.max_accuracy_drop:g} points")
        if self.max_latency_ms is not None and m.latency_ms > self.max_latency_ms:
            out.append(f"latency {m.latency_ms:.3f} ms > {self.max_latency_ms:g} ms")
        if self.max_ram_mb is not None and m.ram_bytes / 1e6 > self.max_ram_mb:
            out.append(f"RAM {m.ram_bytes / 1e6:.2f} MB > {self.max_ram_mb:g} MB")
        return tuple(out)

    def slack(self, m) -> list[float]:  # noqa: ANN001 - TrialMetrics
        """Optuna constraint values (<= 0 means satisfied), one per limit, plus device fit."""
        vals = [0.0 if not m.device_violations else 1.0]
        if self.max_accuracy_drop is not None:
            vals.append(m.accuracy_drop - self.max_accuracy_drop)
        if self.max_latency_ms is not None:
            vals.append(m.latency_ms / self.max_latency_ms - 1)
        if self.max_ram_mb is not None:
            vals.append(m.ram_bytes / 1e6 / self.max_ram_mb - 1)
        return vals

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Constraints":
        return cls(**fields_of(cls, d, "constraints"))
