"""Multi-objective search with Optuna (TPE or NSGA-II), resumable through SQLite storage.

Trials are asked in batches of `parallel`, evaluated by an executor (local or Ray), then told.
A candidate already measured is never measured again: results are cached by candidate key
in the study itself, so a resumed or repeated search reuses them.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Callable

from edgemap.errors import EdgemapError
from edgemap.search.constraints import OBJECTIVES, Constraints  # noqa: F401 - re-exported
from edgemap.search.records import TrialMetrics
from edgemap.search.space import Candidate, SearchSpace


def suggest(trial, space: SearchSpace) -> Candidate:  # noqa: ANN001 - optuna.Trial
    """Define-by-run sampling: calibration is only asked for int8, and only feasible candidates come back."""
    grid = space.grid()
    if not grid:
        raise EdgemapError("no candidate in the search space can run on this device")
    ratios = sorted({c.prune_ratio for c in grid})
    r = trial.suggest_categorical("prune_ratio", ratios)
    p = trial.suggest_categorical("precision", sorted({c.precision for c in grid}))
    cals = sorted({c.calibration for c in grid if c.precision == "int8"})
    cal = trial.suggest_categorical("calibration", cals) if p == "int8" and cals else "none"
    b = trial.suggest_categorical("backend", sorted({c.backend for c in grid}))
    t = trial.suggest_categorical("threads", sorted({c.threads for c in grid}))
    return nearest_feasible(Candidate(r, p, cal, b, t), space, grid)


def nearest_feasible(c: Candidate, space: SearchSpace, grid: list[Candidate]) -> Candidate:
    """`c` when it can run; otherwise the feasible candidate differing from it in the fewest fields.

    Each value is sampled on its own, so a point can combine values that cannot go together (LiteRT INT8
    with a calibration other than its own min/max): its feasible neighbour stands in for it, so the trial
    is not spent on a duplicate under a label that misstates what was built."""
    if space.why_infeasible(c) is None:
        return c
    fields = ("prune_ratio", "precision", "calibration", "backend", "threads")
    return min(grid, key=lambda g: sum(getattr(g, f) != getattr(c, f) for f in fields))


def make_study(storage: Path, name: str, sampler: str, seed: int):  # noqa: ANN201
    """Create or reopen the study (SQLite file at `storage`)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    # constraints reach the samplers through Trial.set_constraint (Optuna 5), see run_search
    if sampler == "tpe":
        s = optuna.samplers.TPESampler(seed=seed, n_startup_trials=8, multivariate=True, group=True)
    elif sampler == "nsga2":
        s = optuna.samplers.NSGAIISampler(seed=seed, population_size=10)
    else:
        raise EdgemapError(f"unknown sampler {sampler!r}; use tpe or nsga2")
    storage.parent.mkdir(parents=True, exist_ok=True)
    return optuna.create_study(study_name=name, storage=f"sqlite:///{storage}", sampler=s,
                               directions=["maximize", "minimize"], load_if_exists=True)


def _recover_interrupted(study) -> None:  # noqa: ANN001
    """Trials left RUNNING by a killed process are failed and their candidates queued again."""
    import optuna

    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=True)


def cached_results(study) -> dict[str, TrialMetrics]:  # noqa: ANN001
    """Metrics of every finished trial, by candidate key."""
    import optuna

    return {t.user_attrs["key"]: TrialMetrics.from_dict(json.loads(t.user_attrs["metrics"]))
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)) if "metrics" in t.user_attrs}


Evaluate = Callable[[list[Candidate]], list[TrialMetrics]]


def run_search(space: SearchSpace, evaluate: Evaluate, study, trials: int, objective: str, constraints: Constraints,
               parallel: int = 1, on_result: Callable[[TrialMetrics], None] | None = None,
               max_asks: int | None = None) -> dict[str, TrialMetrics]:
    """Evaluate up to `trials` distinct candidates (counting those a previous run finished); returns all results."""
    import optuna

    if objective not in OBJECTIVES:
        raise EdgemapError(f"unknown objective {objective!r}; use {', '.join(OBJECTIVES)}")
    _recover_interrupted(study)
    results = cached_results(study)
    limit = min(trials, len(space.grid()))
    asks, max_asks = 0, max_asks or 20 * limit
    while len(results) < limit and asks < max_asks:
        batch = [study.ask() for _ in range(min(parallel, limit - len(results)))]
        asks += len(batch)
        cands = [suggest(t, space) for t in batch]
        fresh = {c.key(): c for c in cands if c.key() not in results}
        if fresh:
            for m in evaluate(list(fresh.values())):
                results[m.key] = m
                if on_result:
                    on_result(m)
        for trial, cand in zip(batch, cands):
            m = results[cand.key()]
            trial.set_user_attr("key", cand.key())
            trial.set_user_attr("metrics", json.dumps(m.to_dict()))
            for i, value in enumerate(constraints.slack(m) if m.ok else [1.0]):
                trial.set_constraint(f"c{i}", value)
            if not m.ok:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, [m.accuracy, m.value(OBJECTIVES[objective])])
    return results
