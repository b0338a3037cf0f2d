"""Knowledge distillation: the shipped model teaches a small student; the same student without a teacher, same budget.

    EDGEMAP_CIFAR10=/work/shared/data/cifar10 .venv/bin/python benchmarks/compress_distill.py --seeds 0 1
    # -> benchmarks/results/compress_distill.{json,md}; training state in runs/compress_bench/distill (resumable)

`--teacher-mirror`: the student learns from the teacher's logits averaged over each image and its mirror (the
teacher column then gives that ensemble's accuracy).

A pruned student (channels removed, not yet fine-tuned) comes from `edgemap compress prune CKPT --out P --ratio 0.5
--latency-runs 0`, then `--student P --temperature 4 --alpha 0.5` (the pruning pass's own distillation settings).

Claim (recorded true/false): the distilled student beats the student trained without distillation, on the full
10,000-image test set, for every seed (same epochs, images, schedule and seed for both).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from compress_common import checkpoint_id, cifar, write_results

WORK = Path("runs/compress_bench/distill")
THREADS = int(__import__("os").environ.get("THREADS", 2))  # training threads (both cores by default)


def main() -> None:
    import torch

    from edgemap.compress.context import PassContext
    from edgemap.compress.distill import Distill, distill_checkpoint
    from edgemap.core.evidence import machine_evidence
    from edgemap.models.shipped import shipped_checkpoint

    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", type=Path, default=None)
    ap.add_argument("--student", default="writeup_cnn")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--images", type=int, default=25000, help="training images (the first N of the train split)")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--temperature", type=float, default=4.0)
    ap.add_argument("--alpha", type=float, default=0.9)
    ap.add_argument("--teacher-mirror", action="store_true",
                    help="distil from the teacher's logits averaged over each image and its mirror")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="training precision (bf16: CPU autocast)")
    ap.add_argument("--name", default="compress_distill", help="results file name in benchmarks/results/")
    args = ap.parse_args()
    torch.set_num_threads(THREADS)
    teacher = args.teacher or shipped_checkpoint()
    train, test = cifar("train"), cifar("test")
    runs = []
    for seed in args.seeds:
        cfg = Distill(student=args.student, epochs=args.epochs, lr=args.lr, temperature=args.temperature,
                      alpha=args.alpha, seed=seed, precision=args.precision, teacher_mirror=args.teacher_mirror)
        ctx = PassContext(train_set=train.subset(slice(0, args.images)), eval_set=test,
                          run_dir=WORK / args.name / f"seed{seed}", latency_runs=0, progress=True)
        report = distill_checkpoint(cfg, teacher, WORK / args.name / f"student_seed{seed}.safetensors", ctx)
        runs.append({"seed": seed, "accuracy": report.accuracy, "wall_s": round(report.wall_s, 1),
                     "history": report.extra["history"], "baseline_history": report.extra["baseline_history"],
                     "params": report.params, "macs": report.macs})
    gains = [r["accuracy"]["after"]["top1"] - r["accuracy"]["before"]["top1"] for r in runs]
    record = {"command": " ".join([".venv/bin/python"] + sys.argv), "teacher": str(teacher), "config": vars(args) | {"teacher": str(teacher)},
              "runs": runs, "gain_points": {"per_seed": [round(g, 2) for g in gains], "mean": round(statistics.mean(gains), 2)},
              "claims": {"distilled_beats_undistilled_every_seed": all(g > 0 for g in gains)},
              "teacher_id": checkpoint_id(teacher), "evidence": machine_evidence(THREADS)}
    write_results(args.name, record, summary_lines(record))


def summary_lines(r: dict) -> list[str]:
    """The markdown summary."""
    c = r["config"]
    lines = [f"# Distillation: {Path(r['teacher']).stem} -> {Path(c['student']).stem}, {c['epochs']} epochs on {c['images']:,} images",
             "",
             f"`{r['command']}`", "", f"CPU: {r['evidence']['cpu']}; T={c['temperature']}, alpha={c['alpha']}, lr={c['lr']}, "
             f"{'teacher averaged with its mirror view, ' if c.get('teacher_mirror') else ''}"
             f"precision {c.get('precision', 'fp32')}; student {r['runs'][0]['macs'][1]:,} MACs; wall s per seed, both students "
             f"(a resumed seed counts only what this run did): {', '.join(str(run['wall_s']) for run in r['runs'])}", "",
             "| seed | teacher top-1 | student without KD (10k / exact) | student with KD (10k / exact) | gain |", "|---|---|---|---|---|"]
    for run, gain in zip(r["runs"], r["gain_points"]["per_seed"]):
        a = run["accuracy"]
        lines.append(f"| {run['seed']} | {a['teacher']['top1']} | {a['before']['top1']} / {a['before']['top1_exact']} | "
                     f"{a['after']['top1']} / {a['after']['top1_exact']} | {gain:+.2f} |")
    lines += ["", f"Mean gain {r['gain_points']['mean']:+.2f} points. Claims: "
                  + ", ".join(f"{k}: {v}" for k, v in r["claims"].items())]
    return lines


if __name__ == "__main__":
    main()
