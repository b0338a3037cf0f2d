"""Issue 5: the Ray executor gives the same Pareto front as the local executor on a fixed seed.

    EDGEMAP_CIFAR10=/work/shared/data/cifar10 .venv/bin/python benchmarks/ray_vs_local.py
    # -> benchmarks/results/ray_vs_local.{json,md}

Deterministic: the device is a profile (rpi5), so the objective is the estimated latency, and accuracy is a
pure function of the candidate's model file. Both runs are full `run_map` calls with the same options and seed,
each with its own study; their artifacts folder is shared with benchmarks/map_host.py (a link), so neither
run pays for pruning or conversion and the wall times compare the searches themselves.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from compress_common import ROOT, SHARED_CIFAR, write_results

# ---- settings --------------------------------------------------------------------------------
DEVICE = "rpi5"
PRUNE_RATIOS = (0.0, 0.25, 0.5)
THREADS = (1, 2, 4)
FINETUNE_EPOCHS = 2               # must match map_host.py to share its artifacts
TRIALS = 16                       # distinct candidates per run (the grid has 90)
SEED = 0
WORKERS = 2                       # local Ray CPUs
LATENCY_RUNS = 10                 # host timing is not the objective here
OUT = ROOT / "out" / "bench" / "ray_vs_local"
ARTIFACTS_FROM = ROOT / "out" / "bench" / "map_host" / "artifacts"
# ------------------------------------------------------------------------------------------------


def options(args: argparse.Namespace, executor: str):  # noqa: ANN201 - MapOptions
    """Identical options for both runs except the executor and the output folder."""
    from edgemap.search.mapper import MapOptions
    from edgemap.search.strategy import Constraints

    return MapOptions(model=args.model, device=args.device, constraints=Constraints(max_accuracy_drop=1.0), trials=args.trials,
                      seed=args.seed, executor=executor, workers=WORKERS, out_dir=args.out / executor, eval_data=args.data,
                      train_data=args.train_data, prune_ratios=PRUNE_RATIOS, finetune_epochs=args.finetune_epochs,
                      threads=THREADS, latency_runs=LATENCY_RUNS, progress=False)


def fresh_folder(folder: Path, artifacts: Path) -> None:
    """An empty output folder (no study to resume) whose artifacts/ links to the shared, already built ones."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if artifacts.is_dir():
        (folder / "artifacts").symlink_to(artifacts.resolve(), target_is_directory=True)


def run(args: argparse.Namespace, executor: str) -> dict:
    """One full map with `executor`; what the comparison needs from it."""
    from edgemap.search.mapper import run_map

    fresh_folder(args.out / executor, args.artifacts_from)
    load = list(os.getloadavg())
    t0 = time.perf_counter()
    s = run_map(options(args, executor))
    wall = round(time.perf_counter() - t0, 1)
    return {"front": sorted(s.front), "trials": [t.key for t in s.trials], "chosen": s.chosen.key if s.chosen else None,
            "metrics": {t.key: {"accuracy": t.accuracy, "latency_ms": t.latency_ms, "error": t.error} for t in s.trials},
            "wall_s": wall, "load_average_before": load}


def compare(local: dict, ray: dict) -> dict:
    """Equal fronts, equal tried sets (and in what order), equal metrics for the candidates both tried."""
    both = set(local["metrics"]) & set(ray["metrics"])
    same = all(local["metrics"][k] == ray["metrics"][k] for k in both)
    return {"same_front": local["front"] == ray["front"], "same_trials_set": set(local["trials"]) == set(ray["trials"]),
            "same_trials_order": local["trials"] == ray["trials"], "same_chosen": local["chosen"] == ray["chosen"],
            "same_metrics_on_common": same, "common": len(both),
            "only_local": sorted(set(local["trials"]) - both), "only_ray": sorted(set(ray["trials"]) - both)}


def markdown(rec: dict) -> list[str]:
    """The short summary (results/ray_vs_local.md)."""
    loc, ray, c = rec["local"], rec["ray"], rec["claims"]
    return [f"# Ray vs local executor on {rec['device']} (estimated latency, seed {rec['seed']})", "",
            f"Command: `{rec['command']}`  ", f"Trials per run: {rec['trials']}; Ray: local instance, {WORKERS} CPUs; CPU "
            f"{rec['evidence']['cpu']} ({rec['evidence']['logical_cpus']} logical), load {rec['evidence'].get('load_average')}", "",
            "| executor | wall s | front | chosen |", "|---|---|---|---|",
            f"| local | {loc['wall_s']} | {', '.join(loc['front'])} | {loc['chosen']} |",
            f"| ray | {ray['wall_s']} | {', '.join(ray['front'])} | {ray['chosen']} |", "",
            f"Same front: **{c['same_front']}**; same candidates tried: {c['same_trials_set']} (same order: {c['same_trials_order']}); "
            f"same metrics on the {c['common']} common candidates: {c['same_metrics_on_common']}.",
            *([f"Only local: {c['only_local']}; only Ray: {c['only_ray']}"] if c["only_local"] or c["only_ray"] else [])]


def main() -> None:
    """Run local then Ray, compare, write results/NAME.{json,md}."""
    from edgemap.core.evidence import machine_evidence

    cifar = Path(os.environ.setdefault("EDGEMAP_CIFAR10", str(SHARED_CIFAR)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="checkpoint (default: the shipped model)")
    ap.add_argument("--data", type=Path, default=cifar)
    ap.add_argument("--train-data", type=Path, default=cifar)
    ap.add_argument("--finetune-epochs", type=int, default=FINETUNE_EPOCHS)
    ap.add_argument("--device", default=DEVICE)
    ap.add_argument("--trials", type=int, default=TRIALS)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--artifacts-from", type=Path, default=ARTIFACTS_FROM, help="built artifacts to share (a link)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--name", default="ray_vs_local")
    args = ap.parse_args()
    local, ray = run(args, "local"), run(args, "ray")
    rec = {"command": " ".join([".venv/bin/python"] + sys.argv), "device": args.device, "seed": args.seed, "trials": args.trials,
           "model": str(args.model or "shipped"), "data": str(args.data), "local": local, "ray": ray, "claims": compare(local, ray),
           "evidence": machine_evidence()}
    write_results(args.name, rec, markdown(rec))


if __name__ == "__main__":
    main()
