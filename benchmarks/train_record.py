"""Record a trained checkpoint's figures in benchmarks/results/: command, epochs, wall time, images/s,
and test accuracy re-measured from the file on the full 10,000 and the 1,000 exact test images.

    EDGEMAP_CIFAR10=../shared/data/cifar10 .venv/bin/python benchmarks/train_record.py \
        edgemap/models/weights/resnet9s.safetensors --claim 85
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgemap.core.atomic import write_text  # noqa: E402
from compress_common import write_result_json  # the JSON is an export of the results store
from edgemap.core.evidence import machine_evidence  # noqa: E402
from edgemap.data.cifar10 import load_cifar10  # noqa: E402
from edgemap.models.checkpoint import load_checkpoint  # noqa: E402
from edgemap.models.stats import count_macs, count_parameters  # noqa: E402
from edgemap.train.evaluate import evaluate  # noqa: E402


def main() -> None:
    """Re-measure, compare with the sidecar and the claimed figure, and write JSON + markdown."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--claim", type=float, required=True, help="the accuracy the model is expected to reach (%)")
    ap.add_argument("--claim-source", default="issue target")
    ap.add_argument("--note", action="append", default=[], help="a fact the record cannot see (repeatable)")
    args = ap.parse_args()
    model, info = load_checkpoint(args.checkpoint)
    test = load_cifar10("test")
    t0 = time.perf_counter()
    res = evaluate(model, test, info.normalization)
    tr = info.training
    stages = _stages(tr)
    hist = [h for st in stages for h in st["history"]]
    record = {
        "model": info.architecture, "checkpoint": str(args.checkpoint.relative_to(ROOT) if args.checkpoint.is_absolute() else args.checkpoint),
        "params": count_parameters(model), "macs": count_macs(model, info.input_shape),
        "command": " && ".join(st["command"] for st in stages), "epochs": len(hist),
        "stages": [{k: st.get(k) for k in ("command", "config", "train_wall_s_total", "images_per_s_median")} for st in stages],
        "train_wall_s": round(sum(h["wall_s"] for h in hist), 1),
        "images_per_s_median": sorted(h["images_per_s"] for h in hist)[len(hist) // 2],
        "images_per_s_per_epoch": [h["images_per_s"] for h in hist],
        "test_top1_full_10000": round(res.top1, 2), "test_top1_exact_1000": round(res.top1_exact, 2),
        "sidecar_test": info.metrics.get("test"), "claim": {"top1": args.claim, "source": args.claim_source,
                                                            "met_full": res.top1 >= args.claim, "met_exact": res.top1_exact >= args.claim},
        "eval_s": round(time.perf_counter() - t0, 1), "evidence_at_training": tr.get("evidence"), "evidence_now": machine_evidence(),
        "notes": args.note, "history": hist, "reproduce": f"EDGEMAP_CIFAR10=../shared/data/cifar10 .venv/bin/python benchmarks/train_record.py {args.checkpoint} --claim {args.claim:g}",
    }
    out = ROOT / "benchmarks" / "results" / f"train_{info.architecture}"
    write_result_json(out.with_suffix(".json"), record)
    write_text(out.with_suffix(".md"), _markdown(record))
    print(_markdown(record))


def _stages(training: dict) -> list[dict]:
    """The training stages, first to last (a fine-tuned checkpoint records its parent under init_from)."""
    chain = []
    while training:
        chain.append(training)
        parent = training.get("init_from") or {}
        training = parent.get("training")
    return list(reversed(chain))


def _markdown(r: dict) -> str:
    ev = r["evidence_at_training"] or {}
    return (f"# Training record: {r['model']}\n\n"
            + "".join(f"- stage {i + 1}: `{st['command']}`\n" for i, st in enumerate(r["stages"]))
            + f"- epochs: {r['epochs']} in all; training wall time {r['train_wall_s']} s "
            f"(sum of epochs); median {r['images_per_s_median']} images/s (per epoch: min {min(r['images_per_s_per_epoch'])}, "
            f"max {max(r['images_per_s_per_epoch'])}; the machine was shared, see the JSON)\n"
            f"- parameters {r['params']:,}; MACs {r['macs'] / 1e6:.2f} M at batch 1\n"
            f"- **test top-1: {r['test_top1_full_10000']:.2f}% on all 10,000; {r['test_top1_exact_1000']:.2f}% on the 1,000 exact images** "
            f"(re-measured from the file)\n- claim {r['claim']['top1']}% ({r['claim']['source']}): "
            f"{'met' if r['claim']['met_full'] else 'NOT met'} on the full split, {'met' if r['claim']['met_exact'] else 'NOT met'} on the exact subset\n"
            f"- machine at training: {ev.get('cpu')} ({ev.get('logical_cpus')} logical CPUs), torch {ev.get('versions', {}).get('torch')}\n"
            f"- reproduce the measurement: `{r['reproduce']}`\n" + "".join(f"- note: {n}\n" for n in r["notes"]))


if __name__ == "__main__":
    main()
