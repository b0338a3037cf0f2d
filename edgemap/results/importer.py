"""Load what earlier versions left in files into the store: benchmarks/results/*.json and a map's results.json.

Imports are idempotent: a file's run carries `source` = its name + content hash, so importing the same
file twice stores it once, and a re-measured file (new content) becomes a new run.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import yaml

from edgemap.errors import EdgemapError
from edgemap.results.builders import accuracy_metrics, map_run, trial_metrics
from edgemap.results.records import Metric, RunRecord


def _read_json(path: Path) -> tuple[dict, str]:
    try:
        raw = path.read_bytes()
        doc = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise EdgemapError(f"{path}: not a readable JSON results file ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise EdgemapError(f"{path}: a results file holds a JSON object, not a {type(doc).__name__}")
    return doc, hashlib.sha256(raw).hexdigest()[:16]


def is_map_results(doc: dict) -> bool:
    """The shape `edgemap map` writes (search/outputs.write_report)."""
    return "trials" in doc and "objective_key" in doc


def map_results_run(path: str | Path) -> RunRecord:
    """A map's results.json (+ the recipe.yaml beside it, which names the model) as a run."""
    path = Path(path)
    doc, digest = _read_json(path)
    if not is_map_results(doc):
        raise EdgemapError(f"{path}: not the results.json of `edgemap map` (no trials / objective)")
    recipe = None
    recipe_path = Path(doc.get("recipe") or path.with_name("recipe.yaml"))
    for candidate in (recipe_path, path.with_name("recipe.yaml")):
        if candidate.is_file():
            recipe = yaml.safe_load(candidate.read_text())
            break
    run = map_run(doc, source=f"map:{path.resolve()}#{digest}", recipe=recipe)
    run.created_at = _mtime(path)
    run.command_line = doc.get("command")  # the import's own command line says nothing about the map
    return run


def benchmark_metrics(doc: dict) -> list[Metric]:
    """The figures most benchmark files share: headline, accuracy per variant, median speedups, a chosen mapping."""
    out = [Metric(k, v, "", "measured") for k, v in (doc.get("headline") or {}).items() if isinstance(v, (int, float))
           and not isinstance(v, bool)]
    for subject, acc in (doc.get("accuracy") or {}).items():
        if isinstance(acc, dict) and "top1" in acc:
            out += accuracy_metrics(acc, subject)
    speedups = dict(doc.get("speedup") or {})
    speedups.update({k[len("speedup_"):]: v for k, v in doc.items() if k.startswith("speedup_") and isinstance(v, dict)})
    out += [Metric(f"speedup_{k}", v["median"], "x", "measured") for k, v in speedups.items()
            if isinstance(v, dict) and isinstance(v.get("median"), (int, float))]
    bench = doc.get("bench") if isinstance(doc.get("bench"), dict) else doc
    for r in bench.get("results", []) if isinstance(bench.get("results"), list) else []:
        if isinstance(r, dict) and isinstance(r.get("latency"), dict) and "label" in r:
            out += [Metric(f"latency_{k}", r["latency"][k], "ms", "measured", r["label"]) for k in ("p50_ms", "p99_ms")
                    if isinstance(r["latency"].get(k), (int, float))]
    out += [Metric(f"claim_{k}", c["value"], "", "measured") for k, c in (doc.get("claims") or {}).items()
            if isinstance(c, dict) and isinstance(c.get("value"), (int, float)) and not isinstance(c["value"], bool)]
    if isinstance(doc.get("chosen"), dict) and "key" in doc["chosen"]:
        out += trial_metrics(doc["chosen"], "")
    seen, unique = set(), []
    for m in out:  # a headline figure may repeat under the same name; keep the first
        if (m.subject, m.name) not in seen:
            seen.add((m.subject, m.name))
            unique.append(m)
    return unique


def benchmark_run(path: str | Path) -> RunRecord:
    """One benchmarks/results/NAME.json as a run of command 'benchmark' labelled NAME; the whole file is its payload."""
    path = Path(path)
    doc, digest = _read_json(path)
    if is_map_results(doc):
        return map_results_run(path)
    ident = doc.get("checkpoint_id") or {}
    model = ident.get("path") or doc.get("checkpoint") or (doc.get("model") if isinstance(doc.get("model"), str) else None)
    return RunRecord(command="benchmark", label=path.stem, model=model,
                     model_sha256=doc.get("model_sha256") or ident.get("sha256_16"), metrics=benchmark_metrics(doc),
                     evidence=doc.get("evidence") or (doc.get("bench") or {}).get("evidence"), payload=doc,
                     command_line=doc.get("command"),
                     source=f"benchmark:{path.stem}#{digest}", created_at=doc.get("when") or _mtime(path),
                     edgemap_commit="")


def import_paths(paths: list[Path]) -> list[RunRecord]:
    """Runs for the given files and folders: *.json results, a map output folder (its results.json, else its
    Optuna study.db), or a study.db."""
    runs = []
    from edgemap.results.study import study_run

    for p in paths:
        if p.is_dir() and not (p / "results.json").is_file() and (p / "study.db").is_file():
            p = p / "study.db"  # an interrupted map: what its study measured
        if p.is_file() and p.suffix == ".db":
            runs.append(study_run(p))
            continue
        if p.is_dir():
            files = [p / "results.json"] if (p / "results.json").is_file() else sorted(p.glob("*.json"))
        elif p.is_file():
            files = [p]
        else:
            raise EdgemapError(f"{p}: no such file or folder to import")
        runs += [benchmark_run(f) for f in files]
    if not runs:
        raise EdgemapError(f"nothing to import in {', '.join(map(str, paths))} (no .json results files)")
    return runs


def _mtime(path: Path) -> str:
    """When the file's figures were made: its last git commit when tracked (a checkout resets mtimes), else its mtime."""
    import subprocess

    try:
        out = subprocess.run(["git", "-C", str(path.parent), "log", "-1", "--format=%ct", "--", path.name],
                             capture_output=True, text=True, timeout=10)
        when = float(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else path.stat().st_mtime
    except (OSError, ValueError, subprocess.TimeoutExpired):
        when = path.stat().st_mtime
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def record_benchmark_file(path: str | Path, store: str | None = None) -> list[str]:
    """What a benchmark script calls after writing benchmarks/results/NAME.json: the same figures into the store."""
    from edgemap.results.record import record_run

    return record_run(benchmark_run(path), store=store)
