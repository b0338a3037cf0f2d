"""How much better a distillation teacher gets when its logits are averaged over each image and its mirror.

    EDGEMAP_CIFAR10=/work/shared/data/cifar10 .venv/bin/python benchmarks/teacher_mirror.py
    # -> benchmarks/results/teacher_mirror.{json,md}

The shipped resnet9s alone and as MirrorAveraged (edgemap.compress.finetune), the teacher `--teacher-mirror` gives
the pruning and distillation passes: top-1 on all 10,000 test images and on the 1,000 exact ones, and how often the
two agree. Accuracy only; the cost is one more teacher forward pass per training batch.
"""

from __future__ import annotations

import sys

from compress_common import both, checkpoint_id, cifar, write_results


def main() -> None:
    import torch

    from edgemap.compress.finetune import MirrorAveraged
    from edgemap.core.evidence import machine_evidence
    from edgemap.models.checkpoint import load_checkpoint
    from edgemap.models.shipped import shipped_checkpoint
    from edgemap.train.evaluate import accuracy_report, predict_logits

    ckpt = shipped_checkpoint()
    model, info = load_checkpoint(ckpt)
    test = cifar("test")
    preds = [predict_logits(m, test, info.normalization).argmax(1) for m in (model, MirrorAveraged(model))]
    plain, mirrored = (accuracy_report(p, test) for p in preds)
    agree = float((preds[0] == preds[1]).mean() * 100)
    record = {"command": " ".join([".venv/bin/python"] + sys.argv), "checkpoint": str(ckpt), "checkpoint_id": checkpoint_id(ckpt),
              "plain": both(plain), "mirror_averaged": both(mirrored), "agreement_pct": round(agree, 2),
              "evidence": machine_evidence(torch.get_num_threads())}
    p, m = record["plain"], record["mirror_averaged"]
    lines = ["# The shipped teacher alone and averaged with its mirror view", "", f"`{record['command']}`", "",
             "| teacher | top-1 (10k) | top-1 (exact 1k) |", "|---|---|---|",
             f"| resnet9s | {p['top1']} | {p['top1_exact']} |",
             f"| resnet9s, logits averaged with the mirrored image's | {m['top1']} | {m['top1_exact']} |", "",
             f"Gain {m['top1'] - p['top1']:+.2f} points (exact 1k: {m['top1_exact'] - p['top1_exact']:+.1f}); the two agree "
             f"on {agree:.2f} % of the images. CPU: {record['evidence']['cpu']}."]
    write_results("teacher_mirror", record, lines)


if __name__ == "__main__":
    main()
