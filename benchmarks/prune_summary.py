"""One table of every recorded 50 %-pruning figure run, for the trend: a query over the results store.

    .venv/bin/python benchmarks/prune_summary.py [--store PATH]
    # -> benchmarks/results/prune_summary.md (measures nothing). The compress_prune*.json files are imported into the
    #    store first (idempotent: a file already stored is not stored twice), then the table is the newest run per name.

Each row is one `benchmarks/compress_prune.py` run: its fine-tuning recipe, the INT8 top-1 drop against the
FP32 original on all 10,000 test images and on the 1,000 exact ones, MACs and speed ratios, and the target
it was held to (drop <= 1.5 points, >= 3x fewer MACs, file >= 10x smaller, >= 8x faster than PyTorch eager).
"""

from __future__ import annotations

import argparse

from compress_common import RESULTS


def recipe(run: dict) -> str:
    """The fine-tuning recipe in a few words: what differs from the defaults is what matters."""
    from edgemap.compress.prune import PruneChannels  # here, not at start-up: the summary only reads JSON

    cfg = run["prune_report"]["config"]
    words = [f"{cfg['importance']}{' global' if cfg.get('global_pruning') else ' per-layer'}",
             f"{cfg['finetune_epochs']} ep", cfg.get("precision") or "fp32"]
    if cfg.get("round_to"):
        words.append(f"round_to {cfg['round_to']}")
    if cfg.get("distill") and (cfg.get("temperature", 4.0), cfg.get("alpha", 0.5)) != (4.0, 0.5):
        words.append(f"T {cfg.get('temperature', 4.0):g} alpha {cfg.get('alpha', 0.5):g}")
    if cfg.get("iterative_steps", 1) > 1:
        words.append(f"{cfg['iterative_steps']} steps, {cfg.get('step_finetune_epochs', 0)} ep between")
    if cfg.get("teacher_mirror"):
        words.append("mirror-averaged teacher")
    if cfg["weight_decay"] != PruneChannels.weight_decay:
        words.append(f"weight decay {cfg['weight_decay']:g}")
    if cfg.get("norm_bias_decay") is False:
        words.append("no decay on BN/bias")
    if cfg.get("mixup"):
        words.append(f"mixup {cfg['mixup']}")
    if cfg.get("keep_layers"):
        words.append(f"kept whole: {', '.join(cfg['keep_layers'])}")
    words += [f"{name} {r}" for name, r in (cfg.get("layer_ratios") or {}).items()]
    if run["prune_report"].get("stage2"):
        words.append(f"+ stage 2 {run['prune_report']['stage2']['config']['epochs']} ep")
    return ", ".join(words)


def asked_half(run: dict) -> bool:
    """Whether the run was configured for the target's 50 % (the table's column says what it actually removed)."""
    return run["prune_report"]["config"]["ratio"] == 0.5


def channels_removed(run: dict) -> str:
    """Share of all conv channels removed: recorded by newer runs; a plain per-layer run removes its ratio everywhere."""
    cfg = run["prune_report"]["config"]
    if "channels_removed" in run["headline"]:
        return f"{run['headline']['channels_removed']:.1%}"
    plain = not (cfg.get("global_pruning") or cfg.get("layer_ratios") or cfg.get("keep_layers") or cfg.get("round_to"))
    return f"{cfg['ratio']:.0%} per layer" if plain and cfg.get("ratio") else "not recorded"


def row(name: str, run: dict) -> str:
    """One table row."""
    acc, speed = run["accuracy"], run["speedup"]
    exact_drop = acc["fp32"]["top1_exact"] - acc["pruned_int8"]["top1_exact"]
    wall = run["prune_report"].get("wall_s", 0) + run["prune_report"].get("stage2", {}).get("wall_s", 0)
    return (f"| `{name}` | {recipe(run)} | {channels_removed(run)} | {acc['pruned_int8']['top1']:.2f} | **{run['headline']['drop_points']:.2f}** | "
            f"{exact_drop:.1f} | x{run['headline']['macs_ratio']} | x{run['headline']['size_ratio']} | "
            f"x{speed['int8_pruned_vs_torch_fp32']['median']} | {wall / 60:.0f} | {run['evidence']['cpu']} |")


def stored_prune_runs(store: str | None) -> dict[str, dict]:
    """{name: result} of every compress_prune run in the store, after importing the result files it lacks."""
    from edgemap.results.importer import import_paths
    from edgemap.results.queries import latest_benchmarks
    from edgemap.results.store import open_store

    s = open_store(store)
    s.record(*import_paths(sorted(RESULTS.glob("compress_prune*.json"))))
    return latest_benchmarks(s, "compress_prune")


def main() -> None:
    from edgemap.core.atomic import write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="results store (default $EDGEMAP_STORE, else .edgemap/store.db)")
    runs = stored_prune_runs(parser.parse_args().store)
    runs = {k: v for k, v in sorted(runs.items()) if "prune_report" in v and "headline" in v}
    lines = ["# Channel pruning (the target: 50 %) + distilled fine-tuning + static INT8: every recorded run", "",
             "`.venv/bin/python benchmarks/prune_summary.py` (a query over the results store, which imports "
             "`benchmarks/results/compress_prune*.json` first)", "",
             "Shipped resnet9s, 88.27 % FP32 (92.4 % on the exact 1,000). Target: drop <= 1.5 points, >= 3x fewer MACs, "
             "file >= 10x smaller, >= 8x faster than PyTorch eager FP32 at batch 1. Wall minutes: pruning and fine-tuning as "
             "this run did them (a run resumed from saved state counts only what it did). File: the FP32 ONNX over the "
             "pruned INT8 ONNX; runs whose FP32 ONNX is 1,694,275 bytes were exported with the PyTorch exporter's per-node "
             "stack traces, which `export_onnx` leaves out since commit 2f4d63d (the 50 % widths: x11.02 with them, x12.76 "
             "without).", "",
             "| run | recipe | channels removed | INT8 top-1 (10k) | drop (10k) | drop (exact 1k) | MACs | file | vs eager | "
             "wall min (this run) | CPU |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [row(name, run) for name, run in sorted(runs.items(), key=lambda kv: kv[1]["headline"]["drop_points"])]
    for label, group in (("Best at 50 % of the channels", {k: v for k, v in runs.items() if asked_half(v)}),
                         ("Best at another ratio (not the target's 50 %)", {k: v for k, v in runs.items() if not asked_half(v)})):
        if group:
            name, best = min(group.items(), key=lambda kv: kv[1]["headline"]["drop_points"])
            drop = best["headline"]["drop_points"]
            lines += ["", f"{label}: `{name}`, drop {drop:.2f} points ({'meets' if drop <= 1.5 else 'misses'} the 1.5-point target)."]
    write_text(RESULTS / "prune_summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
