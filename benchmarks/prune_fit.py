"""Does the 50 %-pruned student underfit or overfit? Top-1 on clean training images next to the test set.

    EDGEMAP_CIFAR10=/work/shared/data/cifar10 .venv/bin/python benchmarks/prune_fit.py [CHECKPOINT ...]
    # -> benchmarks/results/prune_fit.{json,md}; default: the shipped model and every
    #    runs/compress_bench/*/pruned.safetensors present. Rows of the previous prune_fit.json whose
    #    checkpoints were not measured this time are kept, with the CPU that measured them: run folders
    #    are not in git, so a new checkout would otherwise lose every earlier student.

A student that fits the training images nearly as well as its teacher but tests worse needs regularisation;
one that fits them clearly worse is short of capacity, and a different recipe cannot give it back.
Training images: the first TRAIN_N of the training split, without augmentation (what the models were fit on,
as they are: no crop, no flip, no JPEG round trip). FP32 PyTorch, no quantization.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from compress_common import RESULTS, ROOT, both, checkpoint_id, cifar, write_results

TRAIN_N = 20000
THREADS = 2


def main() -> None:
    import torch

    from edgemap.core.evidence import machine_evidence
    from edgemap.models.checkpoint import load_checkpoint
    from edgemap.models.shipped import shipped_checkpoint
    from edgemap.models.stats import count_parameters
    from edgemap.train.evaluate import evaluate

    torch.set_num_threads(THREADS)
    paths = [Path(p) for p in sys.argv[1:]] or [shipped_checkpoint(),
                                                *sorted((ROOT / "runs" / "compress_bench").glob("*/pruned.safetensors"))]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"not found: {', '.join(missing)}")
    train, test = cifar("train").subset(slice(0, TRAIN_N)), cifar("test")
    rows = []
    for path in paths:
        model, info = load_checkpoint(path)
        fit, held = evaluate(model, train, info.normalization), evaluate(model, test, info.normalization)
        rows.append({"checkpoint": checkpoint_id(path), "params": count_parameters(model),
                     "train_clean_top1": round(fit.top1, 2), "test": both(held),
                     "gap_points": round(fit.top1 - held.top1, 2)})
    ev = machine_evidence(THREADS)
    rows = [{**r, "cpu": ev["cpu"]} for r in rows] + earlier_rows({str(p.resolve()) for p in paths})
    record = {"command": " ".join([".venv/bin/python"] + sys.argv), "train_images": TRAIN_N, "threads": THREADS,
              "rows": rows, "evidence": ev}
    lines = ["# Fit of the pruned students: top-1 on clean training images vs the test set (FP32)", "",
             f"`{record['command']}`", "",
             f"CPU: {ev['cpu']}; torch {ev['versions'].get('torch')}; threads {THREADS}. Training images: the first "
             f"{TRAIN_N:,} of the training split, no augmentation. Rows measured by an earlier run (checkpoint no "
             "longer on disk) name the CPU that measured them.", "",
             "| checkpoint | parameters | train top-1 (clean) | test top-1 (10k) | test (exact 1k) | train - test | CPU |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        name = Path(r["checkpoint"]["path"])
        label = name.name if name.parent.name == "weights" else f"{name.parent.name}/{name.name}"
        lines.append(f"| `{label}` | {r['params']:,} | {r['train_clean_top1']} | {r['test']['top1']} | "
                     f"{r['test']['top1_exact']} | {r['gap_points']} | {r['cpu']} |")
    write_results("prune_fit", record, lines)


def earlier_rows(measured: set[str]) -> list[dict]:
    """Rows of the previous prune_fit.json for checkpoints not measured now, each with the CPU that measured it."""
    previous = RESULTS / "prune_fit.json"
    if not previous.is_file():
        return []
    old = json.loads(previous.read_text())
    return [{**r, "cpu": r.get("cpu", old["evidence"]["cpu"])} for r in old["rows"]
            if str(Path(r["checkpoint"]["path"]).resolve()) not in measured]


if __name__ == "__main__":
    main()
