"""The search driver on a known landscape: it must respect constraints, never re-measure, and resume."""

import pytest

from edgemap.search.records import TrialMetrics
from edgemap.search.space import Candidate, SearchSpace
from edgemap.search.strategy import Constraints, cached_results, make_study, run_search

SPACE = SearchSpace(prune_ratios=(0.0, 0.25, 0.5), backends=("onnxruntime", "openvino"), threads=(1, 2))


def landscape(c: Candidate) -> TrialMetrics:
    """Smaller and lower precision is faster and less accurate; openvino is a little faster; 2 threads help."""
    speed = {"fp32": 1.0, "fp16": 1.1, "int8": 3.0}[c.precision] * (1 + 2 * c.prune_ratio) * (1.2 if c.backend == "openvino" else 1)
    speed *= 1.5 if c.threads == 2 else 1
    drop = {"fp32": 0.0, "fp16": 0.05, "int8": {"minmax": 0.6, "entropy": 0.3, "percentile": 0.4, "none": 0}[c.calibration]}[c.precision]
    drop += 3 * c.prune_ratio ** 2
    return TrialMetrics(c, accuracy=90 - drop, accuracy_drop=drop, latency_ms=1.0 / speed, energy_mj=1.0 / speed,
                        size_bytes=1_000_000, ram_bytes=1_000_000)


class Counting:
    def __init__(self, fail_after=None):
        self.calls, self.fail_after = [], fail_after

    def __call__(self, cands):
        out = []
        for c in cands:
            if self.fail_after is not None and len(self.calls) >= self.fail_after:
                raise KeyboardInterrupt  # a killed search
            self.calls.append(c.key())
            out.append(landscape(c))
        return out


def test_search_finds_a_feasible_fast_mapping_without_repeats(tmp_path):
    cons = Constraints(max_accuracy_drop=1.0)
    study = make_study(tmp_path / "s.db", "t", "tpe", 0)
    ev = Counting()
    results = run_search(SPACE, ev, study, trials=20, objective="latency", constraints=cons)
    assert len(ev.calls) == len(set(ev.calls)) == 20 == len(results)
    feasible = [m for m in results.values() if not cons.violations(m)]
    best = min(feasible, key=lambda m: m.latency_ms)
    grid_best = min((landscape(c) for c in SPACE.grid() if landscape(c).accuracy_drop <= 1.0), key=lambda m: m.latency_ms)
    assert best.latency_ms <= grid_best.latency_ms * 1.25
    assert cached_results(study) == results  # the study keeps each trial's typed record, read back equal


def test_an_interrupted_search_resumes_without_repeating_finished_trials(tmp_path):
    cons = Constraints(max_accuracy_drop=1.0)
    first = Counting(fail_after=7)
    with pytest.raises(KeyboardInterrupt):
        run_search(SPACE, first, make_study(tmp_path / "s.db", "t", "tpe", 0), 15, "latency", cons)
    second = Counting()
    results = run_search(SPACE, second, make_study(tmp_path / "s.db", "t", "tpe", 0), 15, "latency", cons)
    assert len(results) == 15
    assert not set(first.calls) & set(second.calls)
    assert len(second.calls) == 15 - 7


def test_constraint_violations_are_explained():
    m = TrialMetrics(Candidate(), accuracy_drop=2.0, latency_ms=3.0, ram_bytes=5_000_000, device_violations=("needs fp16",))
    v = Constraints(max_accuracy_drop=1.0, max_latency_ms=2.0, max_ram_mb=4.0).violations(m)
    assert v == ("needs fp16", "accuracy drop 2.00 > 1 points", "latency 3.000 ms > 2 ms", "RAM 5.00 MB > 4 MB")


def test_only_feasible_candidates_are_evaluated(tmp_path):
    """LiteRT INT8 calibrates itself: a sampled (litert, int8, entropy) point must be evaluated as the
    feasible minmax candidate, never under a label that misstates what was built."""
    space = SearchSpace(prune_ratios=(0.0,), backends=("onnxruntime", "litert"), threads=(1,),
                        installed_backends=("onnxruntime", "litert"))
    ev = Counting()
    results = run_search(space, ev, make_study(tmp_path / "s.db", "t", "tpe", 0), trials=len(space.grid()),
                         objective="latency", constraints=Constraints(max_accuracy_drop=5.0))
    grid_keys = {c.key() for c in space.grid()}
    assert ev.calls and set(ev.calls) <= grid_keys and set(results) <= grid_keys
    assert "p0-int8-minmax-litert-t1" in grid_keys and "p0-int8-entropy-litert-t1" not in grid_keys
