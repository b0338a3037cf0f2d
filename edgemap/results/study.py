"""A map search's Optuna `study.db` as a run, read with sqlite3 alone (no Optuna): what an interrupted or
still-running search has measured, before it wrote results.json."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path

from edgemap.errors import EdgemapError
from edgemap.results.builders import map_run
from edgemap.results.records import RunRecord

OBJECTIVE_KEYS = {"latency": "latency_ms", "energy": "energy_mj", "size": "size_bytes"}


def study_trials(path: Path) -> tuple[str, list[dict]]:
    """(study name, metrics of every completed trial) from an Optuna SQLite storage written by `edgemap map`."""
    try:
        conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        try:
            name = conn.execute("SELECT study_name FROM studies ORDER BY study_id DESC LIMIT 1").fetchone()
            rows = conn.execute(
                "SELECT a.value_json FROM trial_user_attributes a JOIN trials t ON t.trial_id = a.trial_id "
                "WHERE a.key = 'metrics' AND t.state = 'COMPLETE' ORDER BY t.trial_id").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise EdgemapError(f"{path}: not an Optuna study of `edgemap map` ({exc})") from None
    if name is None:
        raise EdgemapError(f"{path}: the study holds no search")
    trials = {}
    for r in rows:  # Optuna stores the attribute JSON-encoded; a candidate tried again keeps its last figures
        m = json.loads(json.loads(r[0]))
        trials[m["key"]] = m
    return name[0], list(trials.values())


def name_parts(name: str, trials: list[dict]) -> tuple[str, str | None]:
    """(objective, device) from the study name `{model stem}-{device}-{objective}-{hash}`; the stem is the
    artifacts folder's name (`artifacts/{stem}-{hash}/...`) of any candidate."""
    m = re.fullmatch(r"(.*)-(latency|energy|size)-[0-9a-f]{8}", name)
    if not m:
        return "latency", None
    stems = {re.sub(r"-[0-9a-f]{10}$", "", Path(t["model_path"]).parents[1].name) for t in trials if t.get("model_path")}
    device = next((m.group(1)[len(st) + 1:] for st in stems if m.group(1).startswith(st + "-")), None)
    return m.group(2), device or None


def pareto_keys(trials: list[dict], objective: str) -> list[str]:
    """Keys of the candidates no other candidate beats on accuracy, the objective and size at once."""
    def dominated(a: dict, b: dict) -> bool:
        le = b["accuracy"] >= a["accuracy"] and b[objective] <= a[objective] and b["size_bytes"] <= a["size_bytes"]
        return le and (b["accuracy"], -b[objective], -b["size_bytes"]) != (a["accuracy"], -a[objective], -a["size_bytes"])
    return [a["key"] for a in trials if not any(dominated(a, b) for b in trials)]


def study_run(path: str | Path) -> RunRecord:
    """The study's finished candidates as a map run without a chosen mapping (the search chooses at its end)."""
    path = Path(path)
    name, trials = study_trials(path)
    ok = [t for t in trials if t.get("error") is None]
    objective, device = name_parts(name, trials)
    key = OBJECTIVE_KEYS[objective]
    summary = {"objective": objective, "objective_key": key, "device": device, "baseline_accuracy": None,
               "data": f"Optuna study {name} ({len(trials)} finished trials); the search did not write results.json, "
                       "so there is no chosen mapping", "constraints": {}, "trials": trials,
               "front": pareto_keys(ok, key) if ok else [], "chosen": None, "nearest": [], "failed":
               {t["key"]: t["error"] for t in trials if t.get("error")}}
    digest = hashlib.sha256(json.dumps(trials, sort_keys=True).encode()).hexdigest()[:16]
    run = map_run(summary, source=f"study:{path.resolve()}#{digest}")
    run.label, run.command_line = f"study {name}", None
    return run
