"""The typed records of a search: one trial's metrics, the context every trial gets, and the search's summary
(the constraints a mapping must meet: edgemap.search.constraints).

Each is a frozen dataclass; `to_dict()` gives the plain form that results.json, the Optuna study (a trial's user
attributes) and Ray's object store carry, with the keys those files have always had, and `from_dict()` reads it back
(an unknown key is a one-line error, not silently dropped).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from edgemap.errors import EdgemapError
from edgemap.search.candidate import Candidate
from edgemap.search.compile import BuildSettings
from edgemap.search.constraints import Constraints, fields_of


@dataclass(frozen=True)
class TrialMetrics:
    """What one candidate measured (or, with `error`, why it could not be built or run).

    accuracy/accuracy_exact: top-1 % (all evaluation images / the lossless ones); latency_ms: the objective's latency
    (host p50 on the host profile, else the device estimate, as latency_basis says); violations: the constraints it
    fails (filled in when the search chooses)."""

    candidate: Candidate
    error: str | None = None
    traceback: str | None = None
    eval_s: float | None = None
    model_path: str | None = None
    sha256: str | None = None
    accuracy: float | None = None
    accuracy_exact: float | None = None
    accuracy_drop: float | None = None
    host_latency: dict = field(default_factory=dict)  # p50_ms, p90_ms, p99_ms, ... (edgemap.runtime.latency)
    latency_ms: float | None = None
    latency_basis: str | None = None
    energy_mj: float | None = None
    ram_bytes: int | None = None
    size_bytes: int | None = None
    confusion: list | None = None  # rows: true class, columns: predicted (None past 100 classes)
    device_violations: tuple[str, ...] = ()
    estimate: dict = field(default_factory=dict)  # the device estimate's figures (edgemap.devices.estimate)
    violations: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.candidate.key()

    @property
    def ok(self) -> bool:
        """Built and measured."""
        return self.error is None

    def value(self, name: str) -> float:
        """A measured figure by its results.json name (an objective key: latency_ms, energy_mj, size_bytes)."""
        return getattr(self, name)

    def to_dict(self) -> dict:
        """results.json's trial record: key, candidate, error (+ traceback) for a failure; every figure otherwise."""
        d: dict[str, Any] = {"key": self.key, "candidate": self.candidate.to_dict(), "error": self.error}
        if self.error is not None:
            return d | ({"traceback": self.traceback} if self.traceback else {})
        rest = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("candidate", "error", "traceback")}
        return d | rest | {"device_violations": list(self.device_violations), "violations": list(self.violations)}

    @classmethod
    def from_dict(cls, d: dict) -> "TrialMetrics":
        kw = fields_of(cls, d, "trial metrics", ignore=("key",))
        kw["candidate"] = Candidate(**kw["candidate"]) if isinstance(kw.get("candidate"), dict) else kw.get("candidate")
        for name in ("device_violations", "violations"):
            kw[name] = tuple(kw.get(name) or ())
        m = cls(**kw)
        if "key" in d and d["key"] != m.key:
            raise EdgemapError(f"trial metrics: key {d['key']!r} does not name its candidate ({m.key})")
        return m


@dataclass(frozen=True)
class SearchContext:
    """What every trial of one search gets: the base recipe (schema, model, data, preprocessing; each candidate adds
    its passes and runtime), the pass options all candidates share, where files go, and the baseline."""

    recipe: dict
    settings: BuildSettings
    work_dir: str
    cache_dir: str
    eval_npz: str
    device: str = "host"
    device_is_host: bool = False
    latency_runs: int = 100
    baseline_accuracy: float = 0.0
    progress: bool = False
    parity_n: int = 256
    fp32_onnx: str | None = None  # the unmodified model as FP32 ONNX (baseline, comparison row)
    finetune: dict = field(default_factory=dict)  # pruning ratio -> how its fine-tuning went

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)} | {"settings": dataclasses.asdict(self.settings)}

    @classmethod
    def from_dict(cls, d: dict) -> "SearchContext":
        kw = fields_of(cls, d, "search context")
        if isinstance(kw.get("settings"), dict):
            kw["settings"] = BuildSettings(**kw["settings"])
        return cls(**kw)


# keys of results.json written only once their step has run (absent before, as they always were)
_OPTIONAL = ("choice", "comparison", "timing", "peers", "bundle", "recipe", "wall_s", "report", "evidence", "class_names", "report_html")


@dataclass(frozen=True)
class SearchSummary:
    """The outcome of `edgemap map`, written to results.json: every trial, the Pareto front (keys), the chosen
    mapping (or the nearest misses), the isolated timing and where the recipe, bundle and report are."""

    objective: str
    objective_key: str
    device: str
    baseline_accuracy: float
    data: str
    constraints: Constraints
    trials: tuple[TrialMetrics, ...]
    front: tuple[str, ...] = ()
    chosen: TrialMetrics | None = None
    nearest: tuple[TrialMetrics, ...] = ()
    finalists: dict = field(default_factory=dict)  # file key -> its isolated timing and rank
    failed: dict = field(default_factory=dict)  # candidate key -> error
    finetune: dict = field(default_factory=dict)
    choice: dict = field(default_factory=dict)  # how estimated latencies were tied (search/estimate_ties.py)
    comparison: dict = field(default_factory=dict)  # role -> timing row (edgemap.search.robust.comparison)
    timing: dict = field(default_factory=dict)  # how the comparison was timed, with its evidence
    peers: dict | None = None
    bundle: str | None = None
    recipe: str | None = None
    wall_s: float | None = None
    report: str | None = None
    evidence: dict = field(default_factory=dict)
    class_names: tuple[str, ...] = ()
    report_html: str | None = None

    def trial(self, key: str) -> TrialMetrics:
        """The trial of candidate `key`."""
        for t in self.trials:
            if t.key == key:
                return t
        raise KeyError(key)

    def to_dict(self) -> dict:
        """results.json: the layout the report, `runs` and the results store read."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d |= {"constraints": self.constraints.to_dict(), "trials": [t.to_dict() for t in self.trials],
              "front": list(self.front), "chosen": self.chosen.to_dict() if self.chosen else None,
              "nearest": [m.to_dict() for m in self.nearest], "class_names": list(self.class_names)}
        return {k: v for k, v in d.items() if k not in _OPTIONAL or v not in (None, {}, [])}

    @classmethod
    def from_dict(cls, d: dict) -> "SearchSummary":
        kw = fields_of(cls, d, "search summary")
        kw["constraints"] = Constraints.from_dict(kw["constraints"])
        kw["trials"] = tuple(TrialMetrics.from_dict(t) for t in kw["trials"])
        kw["chosen"] = TrialMetrics.from_dict(kw["chosen"]) if kw.get("chosen") else None
        kw["nearest"] = tuple(TrialMetrics.from_dict(t) for t in kw.get("nearest") or ())
        kw["front"], kw["class_names"] = tuple(kw.get("front") or ()), tuple(kw.get("class_names") or ())
        return cls(**kw)
