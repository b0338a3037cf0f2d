"""50 % channel pruning + fine-tuning (distilled from the unpruned model) + static INT8, on full CIFAR-10.

    EDGEMAP_CIFAR10=/work/shared/data/cifar10 .venv/bin/python benchmarks/compress_prune.py --epochs 40
    # -> benchmarks/results/compress_prune.{json,md}; fine-tuning state in runs/compress_bench/prune (resumable:
    #    re-run the same command after an interruption and it continues from the last finished epoch)

Claims (recorded true/false): top-1 drop <= 1.5 points vs the FP32 original (10,000 test images); >= 3x fewer MACs;
INT8 file >= 10x smaller than the FP32 ONNX; >= 8x faster than PyTorch eager FP32 at batch 1 (same run, interleaved).
The pruning-only latency change (PyTorch eager, FP32 pruned vs unpruned) is measured too.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from compress_common import checkpoint_id, both, cifar, latency_rounds, ort_fn, ratio, torch_fn, write_results

# ---- settings --------------------------------------------------------------------------------
THREADS = 1                   # batch-1 latency with one intra-op thread (2 cores shared with other work)
TRAIN_THREADS = 2             # fine-tuning uses both cores
ROUNDS, RUNS = int(os.environ.get("ROUNDS", 5)), int(os.environ.get("RUNS", 300))
SAMPLES = 512                 # INT8 calibration images from the CIFAR-10 train split
WORK = Path(os.environ.get("PRUNE_WORK", "runs/compress_bench/prune"))  # one folder per configuration
# ------------------------------------------------------------------------------------------------


def main() -> None:
    import torch

    from edgemap.compress.calibration import calibration_array
    from edgemap.compress.context import PassContext
    from edgemap.compress.measure import onnx_eval
    from edgemap.compress.prune import PruneChannels, parse_layer_ratios, prune_checkpoint
    from edgemap.compress.quantize import QuantizeStatic, quantize_static_onnx
    from edgemap.convert.onnx_export import export_onnx
    from edgemap.core.evidence import machine_evidence
    from edgemap.models.checkpoint import conv_widths, load_checkpoint
    from edgemap.models.shipped import shipped_checkpoint
    from edgemap.models.stats import count_macs

    args = parse_args()
    ckpt = args.checkpoint or shipped_checkpoint()
    train, test = cifar("train"), cifar("test")
    tune_set = train.subset(slice(0, args.limit)) if args.limit else train
    WORK.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(TRAIN_THREADS)
    cfg = PruneChannels(ratio=args.ratio, importance=args.importance, global_pruning=args.global_pruning, round_to=args.round_to,
                        finetune_epochs=args.epochs, finetune_lr=args.lr, distill=not args.no_distill, alpha=args.alpha,
                        temperature=args.temperature, teacher_mirror=args.teacher_mirror,
                        iterative_steps=args.steps, step_finetune_epochs=args.step_epochs,
                        jpeg_augment=args.jpeg_augment, weight_decay=args.weight_decay,
                        norm_bias_decay=not args.no_norm_bias_decay, precision=args.precision, mixup=args.mixup,
                        keep_layers=tuple(args.keep), layer_ratios=parse_layer_ratios(args.layer_ratio))
    if args.from_state:
        prune_report = partial_run(cfg, ckpt, test)
    else:
        ctx = PassContext(train_set=tune_set, eval_set=test, run_dir=WORK / "state", latency_runs=0, progress=True)
        prune_report = prune_checkpoint(cfg, ckpt, WORK / "pruned.safetensors", ctx).to_dict()
    measured = WORK / "pruned.safetensors"
    if args.stage2_epochs:
        measured, prune_report["stage2"] = stage2(args, ckpt, tune_set, test)
    torch.set_num_threads(THREADS)
    model, info = load_checkpoint(ckpt)
    pruned, _ = load_checkpoint(measured)
    fp32 = export_onnx(model, WORK / "fp32.onnx", info.input_shape)
    pruned_fp32 = export_onnx(pruned, WORK / "pruned_fp32.onnx", info.input_shape)
    calib = calibration_array(train, SAMPLES, info.normalization, seed=0)
    int8 = WORK / "pruned_int8.onnx"
    summary = quantize_static_onnx(pruned_fp32, int8, calib, QuantizeStatic(samples=SAMPLES, float_first_last=True))
    acc = {name: both(onnx_eval(p, test, info.normalization)) for name, p in
           (("fp32", fp32), ("pruned_fp32", pruned_fp32), ("pruned_int8", int8))}
    lat = latency_rounds({"torch_fp32": torch_fn(model), "torch_pruned_fp32": torch_fn(pruned),
                          "ort_fp32": ort_fn(fp32, THREADS), "ort_pruned_int8": ort_fn(int8, THREADS)}, ROUNDS, RUNS)
    widths = {"original": conv_widths(model), "pruned": conv_widths(pruned)}
    record = build_record(prune_report, acc, (count_macs(model), count_macs(pruned)), (fp32, pruned_fp32, int8), summary, lat,
                          widths)
    record["checkpoint"], record["checkpoint_id"] = str(ckpt), checkpoint_id(ckpt)
    record["evidence"] = machine_evidence(THREADS)
    write_results(args.name, record, summary_lines(record))


def parse_args() -> argparse.Namespace:
    """Command-line settings."""
    from edgemap.compress.prune import PruneChannels

    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--ratio", type=float, default=0.5)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--name", default="compress_prune", help="results file name in benchmarks/results/")
    ap.add_argument("--importance", choices=("l1", "l2", "taylor"), default="l2")
    ap.add_argument("--global-pruning", action="store_true", help="rank channels over the whole net, not per layer")
    ap.add_argument("--steps", type=int, default=1, help="reach the ratio in this many pruning steps (iterative pruning)")
    ap.add_argument("--step-epochs", type=int, default=0,
                    help="with --steps: distilled fine-tuning epochs after every step but the last (--epochs follow the last)")
    ap.add_argument("--round-to", type=int, default=None, help="keep channel counts multiples of this")
    ap.add_argument("--alpha", type=float, default=0.5, help="weight of the distillation term")
    ap.add_argument("--temperature", type=float, default=4.0,
                    help="distillation temperature (the shipped teacher was trained with label smoothing: its targets are "
                         "near uniform at 4, see extra.soft_targets in the report)")
    ap.add_argument("--teacher-mirror", action="store_true",
                    help="distil from the teacher's logits averaged over each image and its mirror")
    ap.add_argument("--jpeg-augment", type=float, default=None,
                    help="share of fine-tuning images given a JPEG round trip (default: what the checkpoint was trained with)")
    ap.add_argument("--weight-decay", type=float, default=PruneChannels.weight_decay)
    ap.add_argument("--no-norm-bias-decay", action="store_true", help="no weight decay on BatchNorm parameters and biases")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="fine-tuning precision (bf16: CPU autocast)")
    ap.add_argument("--mixup", type=float, default=0.0, help="mixup Beta parameter during fine-tuning (0: off)")
    ap.add_argument("--keep", action="append", default=[], metavar="MODULE",
                    help="never prune this module's output channels (repeatable), e.g. prep (the stem)")
    ap.add_argument("--layer-ratio", action="append", default=[], metavar="MODULE=RATIO",
                    help="per-layer ratio override (repeatable)")
    ap.add_argument("--no-distill", action="store_true")
    ap.add_argument("--limit", type=int, default=0, help="fine-tune on the first N training images (0: all)")
    ap.add_argument("--from-state", action="store_true",
                    help="measure the fine-tuning state saved so far (the epochs finished) instead of running it to the end")
    ap.add_argument("--stage2-epochs", type=int, default=0,
                    help="then a second distilled fine-tuning of the pruned model (a fresh cosine schedule), like the "
                         "shipped model's own second stage; 0: none")
    ap.add_argument("--stage2-lr", type=float, default=0.04)
    return ap.parse_args()


def stage2(args: argparse.Namespace, ckpt: Path, train, test) -> tuple[Path, dict]:  # noqa: ANN001 - ImageSets
    """Distil the unpruned checkpoint into the fine-tuned pruned model once more (edgemap's Distill pass; resumable)."""
    from edgemap.compress.context import PassContext
    from edgemap.compress.distill import Distill, distill_checkpoint

    out = WORK / f"pruned_stage2_e{args.stage2_epochs}.safetensors"
    cfg = Distill(student=str(WORK / "pruned.safetensors"), epochs=args.stage2_epochs, lr=args.stage2_lr,
                  temperature=args.temperature, alpha=args.alpha, teacher_mirror=args.teacher_mirror, compare_baseline=False,
                  jpeg_augment=args.jpeg_augment)
    ctx = PassContext(train_set=train, eval_set=test, run_dir=WORK / f"state_stage2_e{args.stage2_epochs}", latency_runs=0,
                      progress=True)
    report = distill_checkpoint(cfg, ckpt, out, ctx).to_dict()
    return out, {"config": report["config"], "accuracy": report["accuracy"], "wall_s": report["wall_s"],
                 "jpeg_augment": report["extra"]["jpeg_augment"]}


def partial_run(cfg, ckpt: Path, test) -> dict:  # noqa: ANN001
    """The pruned model as the (resumable) fine-tuning run left it: pruned structure + last finished epoch's weights."""
    import dataclasses
    import json

    from safetensors.torch import load_file

    from edgemap.compress.measure import torch_accuracy
    from edgemap.compress.prune import prune_model
    from edgemap.core.passes import config_to_dict
    from edgemap.models.checkpoint import layer_shapes, load_checkpoint, save_checkpoint

    model, info = load_checkpoint(ckpt)
    pruned = prune_model(model, cfg, info.input_shape)
    before = torch_accuracy(pruned, test, info.normalization)
    state_dir = WORK / "state" / "prune_final"
    pruned.load_state_dict(load_file(str(state_dir / "last.safetensors")))
    state = json.loads((state_dir / "state.json").read_text())
    save_checkpoint(pruned, dataclasses.replace(info, layers=layer_shapes(pruned)), WORK / "pruned.safetensors")
    return {"config": config_to_dict(cfg), "accuracy": {"pruned_before_finetune": before},
            "finetune_epochs_done": state["epoch"], "finetune_history": state["history"],
            "note": f"measured after {state['epoch']} of {cfg.finetune_epochs} scheduled fine-tuning epochs (run cut short)"}


def build_record(prune_report: dict, acc: dict, macs: tuple[int, int], files: tuple[Path, Path, Path], summary: dict,  # noqa: ANN001
                 lat: dict, widths: dict) -> dict:
    """Everything measured, the headline ratios and the claims."""
    fp32, pruned_fp32, int8 = files
    record = {"command": " ".join([".venv/bin/python"] + sys.argv), "threads": THREADS, "conv_widths": widths,
              "prune_report": prune_report, "accuracy": acc, "macs": macs,
              "bytes": {"fp32_onnx": fp32.stat().st_size, "pruned_fp32_onnx": pruned_fp32.stat().st_size,
                        "pruned_int8_onnx": int8.stat().st_size},
              "int8": summary, "latency_batch1": lat,
              "speedup": {"int8_pruned_vs_torch_fp32": ratio(lat, "torch_fp32", "ort_pruned_int8"),
                          "int8_pruned_vs_ort_fp32": ratio(lat, "ort_fp32", "ort_pruned_int8"),
                          "pruning_only_torch_fp32": ratio(lat, "torch_fp32", "torch_pruned_fp32")}}
    drop = round(acc["fp32"]["top1"] - acc["pruned_int8"]["top1"], 2)
    record["headline"] = {"drop_points": drop, "macs_ratio": round(macs[0] / macs[1], 2),
                          "channels_removed": round(1 - sum(widths["pruned"]) / sum(widths["original"]), 4),
                          "size_ratio": round(record["bytes"]["fp32_onnx"] / record["bytes"]["pruned_int8_onnx"], 2)}
    record["claims"] = {"accuracy_drop_le_1.5": drop <= 1.5, "macs_ge_3x_fewer": record["headline"]["macs_ratio"] >= 3,
                        "file_ge_10x_smaller": record["headline"]["size_ratio"] >= 10,
                        "ge_8x_faster_than_torch_fp32": record["speedup"]["int8_pruned_vs_torch_fp32"]["median"] >= 8}
    return record


def distill_words(cfg: dict) -> str:
    """How the fine-tuning was distilled, for the title ('' without a teacher)."""
    if not cfg["distill"]:
        return ""
    teacher = "the unpruned model" + (" averaged with its mirror view" if cfg.get("teacher_mirror") else "")
    return f" (distilled from {teacher}, T {cfg.get('temperature', 4.0):g}, alpha {cfg['alpha']:g})"


def summary_lines(r: dict) -> list[str]:
    """The markdown summary."""
    from edgemap.compress.prune import PruneChannels

    a, h, s = r["accuracy"], r["headline"], r["speedup"]
    cfg = r["prune_report"]["config"]
    done = r["prune_report"].get("finetune_epochs_done", cfg["finetune_epochs"])
    s2 = r["prune_report"].get("stage2")
    steps = cfg.get("iterative_steps", 1)
    lines = [f"# {cfg['ratio']:.0%} channel pruning"
             + (f" in {steps} steps ({cfg.get('step_finetune_epochs', 0)} fine-tuning epochs after each but the last)"
                if steps > 1 else "")
             + f" + {done} of {cfg['finetune_epochs']} fine-tuning epochs"
             f"{distill_words(cfg)}"
             f"{' in bf16 autocast' if cfg.get('precision', 'fp32') == 'bf16' else ''}"
             + (f", weight decay {cfg['weight_decay']:g}" if cfg["weight_decay"] != PruneChannels.weight_decay else "")
             + (", no weight decay on BatchNorm/bias" if cfg.get("norm_bias_decay") is False else "")
             + (f" + a second stage of {s2['config']['epochs']} distilled epochs (lr {s2['config']['lr']}, fresh cosine)"
                if s2 else "") + " + static INT8", "",
             f"`{r['command']}`", "", f"CPU: {r['evidence']['cpu']} ({', '.join(r['evidence']['cpu_flags'])}); "
             f"latency threads {r['threads']}; load average at the end {r['evidence'].get('load_average')}", "",
             "| model | top-1 (10k) | top-1 (exact 1k) | MACs | ONNX bytes |", "|---|---|---|---|---|",
             f"| FP32 original | {a['fp32']['top1']} | {a['fp32']['top1_exact']} | {r['macs'][0]:,} | {r['bytes']['fp32_onnx']:,} |",
             f"| pruned FP32 | {a['pruned_fp32']['top1']} | {a['pruned_fp32']['top1_exact']} | {r['macs'][1]:,} | {r['bytes']['pruned_fp32_onnx']:,} |",
             f"| pruned INT8 | {a['pruned_int8']['top1']} | {a['pruned_int8']['top1_exact']} | {r['macs'][1]:,} | {r['bytes']['pruned_int8_onnx']:,} |",
             "", f"Conv widths {r['conv_widths']['original']} -> {r['conv_widths']['pruned']}: "
             f"{h['channels_removed']:.1%} of all conv channels removed"
             + (f" (kept whole: {', '.join(cfg['keep_layers'])})" if cfg.get("keep_layers") else "")
             + (f" (per-layer ratios: {cfg['layer_ratios']})" if cfg.get("layer_ratios") else "") + ".",
             "", f"Pruned before fine-tuning: {r['prune_report']['accuracy']['pruned_before_finetune']['top1']} % top-1."
             + (f" Teacher the student learned from: {r['prune_report']['extra']['teacher_accuracy']['top1']} % top-1."
                if r['prune_report'].get('extra', {}).get('teacher_accuracy') else "")
             + (f" Pruning + fine-tuning took {r['prune_report']['wall_s'] / 60:.0f} min." if r['prune_report'].get('wall_s') else ""),
             "", "Batch-1 latency, p50 in ms (median over rounds [min-max]):", ""]
    lines += [f"- {k}: {v['p50_ms_median']} [{v['p50_ms_min']}-{v['p50_ms_max']}]" for k, v in r["latency_batch1"]["candidates"].items()]
    lines += ["", f"Drop {h['drop_points']} points; x{h['macs_ratio']} fewer MACs; file x{h['size_ratio']} smaller than FP32 ONNX; "
                  f"x{s['int8_pruned_vs_torch_fp32']['median']} faster than PyTorch eager FP32 "
                  f"(range {s['int8_pruned_vs_torch_fp32']['min']}-{s['int8_pruned_vs_torch_fp32']['max']}), "
                  f"x{s['int8_pruned_vs_ort_fp32']['median']} faster than ORT FP32; pruning alone in PyTorch eager: "
                  f"x{s['pruning_only_torch_fp32']['median']}.", "",
              "Claims: " + ", ".join(f"{k}: {v}" for k, v in r["claims"].items())]
    return lines


if __name__ == "__main__":
    main()
