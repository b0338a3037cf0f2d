"""Training throughput, fp32 vs bf16 autocast, through edgemap's own training loop on this CPU.

    .venv/bin/python benchmarks/train_precision.py
    # -> benchmarks/results/train_precision.{json,md}

Whether `--precision bf16` pays depends on the CPU: it needs oneDNN kernels that run bfloat16 natively fast
(AMX, or AVX-512 BF16 on some cores). Two workloads, as edgemap trains them: the shipped resnet9s trained with
cross-entropy, and its 50 %-pruned copy fine-tuned with the unpruned model as teacher (the pruning benchmark's
inner loop). Images/s of the last epoch of a short run on the shipped 1,000-image sample, the two precisions
interleaved round by round; the ratio is taken per round (shared machines drift), median and range reported.
Local files only.
"""

from __future__ import annotations

import argparse
import copy
import statistics

from compress_common import write_results

THREADS = 2          # both cores, as training runs here
BATCH = 256          # the pruning fine-tune's batch size
EPOCHS = 3           # per measured run; the last epoch's images/s is kept (the first pays for warm-up)


def main() -> None:
    import torch

    from edgemap.compress.finetune import distillation_loss
    from edgemap.compress.prune import PruneChannels, prune_model
    from edgemap.core.evidence import machine_evidence
    from edgemap.data.cifar10 import load_npz
    from edgemap.data.sample import SAMPLE_PATH
    from edgemap.models.checkpoint import load_checkpoint
    from edgemap.models.shipped import shipped_checkpoint
    from edgemap.train.loop import TrainConfig, train

    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--name", default="train_precision")
    args = ap.parse_args()
    torch.set_num_threads(THREADS)
    data = load_npz(SAMPLE_PATH)
    shipped, info = load_checkpoint(shipped_checkpoint())
    pruned = prune_model(shipped, PruneChannels(ratio=0.5), info.input_shape)
    workloads = {"train_resnet9s": (shipped, None), "distil_pruned_resnet9s": (pruned, shipped)}

    def images_per_s(name: str, precision: str) -> float:
        student, teacher = workloads[name]
        model = copy.deepcopy(student)
        loss = distillation_loss(copy.deepcopy(teacher), 4.0, 0.5) if teacher is not None else None
        cfg = TrainConfig(epochs=EPOCHS, batch_size=BATCH, lr=0.01, jpeg_augment=0.0, precision=precision, threads=THREADS)
        return train(model, data, cfg, info.normalization, loss_fn=loss, progress=False)["history"][-1]["images_per_s"]

    per_round = []
    for _ in range(args.rounds):
        per_round.append({f"{w}/{p}": images_per_s(w, p) for w in workloads for p in ("fp32", "bf16")})
    summary = {}
    for w in workloads:
        ratios = [r[f"{w}/bf16"] / r[f"{w}/fp32"] for r in per_round]
        summary[w] = {p: {"images_per_s_median": statistics.median(r[f"{w}/{p}"] for r in per_round),
                          "min": min(r[f"{w}/{p}"] for r in per_round), "max": max(r[f"{w}/{p}"] for r in per_round)}
                      for p in ("fp32", "bf16")}
        summary[w]["bf16_speedup"] = {"median": round(statistics.median(ratios), 3), "min": round(min(ratios), 3),
                                      "max": round(max(ratios), 3)}
    ev = machine_evidence(THREADS)
    record = {"command": "benchmarks/train_precision.py " + " ".join(f"--{k} {v}" for k, v in vars(args).items()),
              "threads": THREADS, "batch_size": BATCH, "epochs_per_run": EPOCHS, "images": len(data),
              "per_round_images_per_s": per_round, "summary": summary, "evidence": ev}
    flags = [f for f in ev["cpu_flags"] if "bf16" in f or "amx" in f]
    lines = ["# Training throughput: fp32 vs bf16 autocast, edgemap's training loop", "",
             f"`.venv/bin/python {record['command']}`", "",
             f"CPU: {ev['cpu']}; bf16-related flags: {flags}; torch threads {THREADS}; batch {BATCH}; "
             f"{args.rounds} interleaved rounds; load average at the end {ev.get('load_average')}", "",
             "| workload | fp32 images/s (median [min-max]) | bf16 images/s | bf16 speed-up per round (median [min-max]) |",
             "|---|---|---|---|"]
    for w, s in summary.items():
        f, b, r = s["fp32"], s["bf16"], s["bf16_speedup"]
        lines.append(f"| {w} | {f['images_per_s_median']:.0f} [{f['min']:.0f}-{f['max']:.0f}] | "
                     f"{b['images_per_s_median']:.0f} [{b['min']:.0f}-{b['max']:.0f}] | x{r['median']} [{r['min']}-{r['max']}] |")
    write_results(args.name, record, lines)


if __name__ == "__main__":
    main()
