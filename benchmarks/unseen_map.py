"""`edgemap map --prune-ratios 0,0.25,0.5` on the two user models edgemap has never seen, fine-tuning left at its
defaults (300-step budget, criterion/schedule probe, early stop once a paired drop's upper bound is within half of
--max-accuracy-drop 1): the wall time, and whether the 0.25-pruned candidate is within 1 point of the unpruned model
on the real test split (all 10,000 images and the 1,000 exact ones).

    flock /work/notes/s3/bench.lock nice -n 5 .venv/bin/python benchmarks/unseen_map.py [--models graynet,dwhsnet] [--val]

--val adds `--val-data`: images the model was not trained on (benchmarks/unseen_make.py writes them) judge the
fine-tuning instead of held-out training images.

Needs `benchmarks/unseen_make.py` first (out/unseen). The search itself is sized down (SEARCH below: ONNX Runtime,
FP32 and INT8, MinMax, 6 trials) so that both maps fit in well under an hour on the shared 2-core host; the
fine-tuning, the part this figure is about, runs with the map's defaults. Result: benchmarks/results/unseen_map{tag}.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

# ---- settings ----------------------------------------------------------------------------------
U = "out/unseen"
CIFAR = "/work/shared/data/cifar10"
RATIOS = "0,0.25,0.5"
SEARCH = ["--backends", "onnxruntime", "--precisions", "fp32,int8", "--calibrations", "minmax", "--trials", "6"]
MODELS = {
    "graynet": ["--model", f"{U}/graynet.onnx", "--labels", f"{U}/graynet.labels.txt",
                "--preprocess", "channels=gray,scale=1/255,mean=0.5,std=0.25",
                "--data", f"{U}/gray/test", "--train-data", f"{U}/gray/train"],
    "dwhsnet": ["--model", f"{U}/dwhsnet.onnx", "--preprocess", "cifar10", "--data", CIFAR, "--train-data", CIFAR],
}
VAL = {"graynet": f"{U}/gray/val", "dwhsnet": f"{U}/dw_val.npz"}  # --val: training images the model never saw
BOUND = 1.0  # points: the "within 1 point"
# -------------------------------------------------------------------------------------------------


def run_map(name: str, out: Path, val: bool = False) -> dict:
    """One `edgemap map` in its own process; its wall time, console tail and results.json."""
    args = ["map", *MODELS[name], *(["--val-data", VAL[name]] if val else []), "--prune-ratios", RATIOS, *SEARCH,
            "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "edgemap.cli", *args], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"command": "edgemap " + " ".join(args), "error": proc.stderr.strip()[-800:], "wall_s": round(wall, 1)}
    summary = json.loads((out / "results.json").read_text())
    return {"command": "edgemap " + " ".join(f"'{a}'" if "," in a or "=" in a else a for a in args),
            "wall_s": round(wall, 1), "console": (proc.stdout + proc.stderr).strip().splitlines()[-40:],
            **digest(summary, name)}


def digest(summary: dict, name: str) -> dict:
    """Per ratio: the best candidate's accuracy and drop on all 10,000 test images and on the 1,000 exact ones (and
    whether within BOUND), the fine-tuning record (its budget, which images judged it, the paired decision, MACs)."""
    per_ratio, paths = {}, {}
    for t in summary["trials"]:
        if t.get("error"):
            continue
        r = f"{t['candidate']['prune_ratio']:g}"
        if r not in per_ratio or t["accuracy"] > per_ratio[r]["accuracy"]:
            per_ratio[r] = {"best_candidate": t["key"], "accuracy": t["accuracy"], "drop": t["accuracy_drop"]}
            paths[r] = t["model_path"]
    exact = {r: test_accuracy(name, p) for r, p in paths.items()}
    for r, v in per_ratio.items():
        v["within_1_point"] = v["drop"] <= BOUND
        v["test_check"] = exact[r]
        v["drop_exact1000"] = round(exact["0"]["top1_exact1000"] - exact[r]["top1_exact1000"], 2) if "0" in exact else None
        ft = (summary.get("finetune") or {}).get(r)
        if ft:
            v["finetune"] = {k: ft.get(k) for k in ("budget_used", "stopped", "optimizer", "lr", "target", "best_accuracy",
                                                    "given_up", "probe_steps", "judged_on", "decision", "macs")}
            v["pruning"] = (ft.get("pruning") or {}).get("reason")
    chosen = summary.get("chosen") or {}
    return {"baseline_accuracy": summary.get("baseline_accuracy"), "ratios": per_ratio, "chosen": chosen.get("key"),
            "chosen_accuracy": chosen.get("accuracy"), "failed": summary.get("failed")}


def test_accuracy(name: str, model_path: str) -> dict:
    """Top-1 of an ONNX file on all 10,000 CIFAR-10 test images and the 1,000 exact ones (unseen_make's way)."""
    import numpy as np

    from edgemap.data.cifar10 import load_cifar10
    from edgemap.data.dataset import CIFAR10_CLASSES
    from edgemap.data.preprocess import parse_preprocess
    from unseen_make import GRAY_PREPROCESS, model_order, onnx_accuracy

    test = load_cifar10("test", CIFAR)
    if name == "graynet":
        order = model_order()
        labels = np.array([order.index(CIFAR10_CLASSES[int(y)]) for y in test.labels])
        return onnx_accuracy(Path(model_path), test.images, labels, parse_preprocess(GRAY_PREPROCESS))
    return onnx_accuracy(Path(model_path), test.images, test.labels, parse_preprocess("cifar10"))


def report_lines(results: dict, evidence: dict, val: bool) -> list[str]:
    lines = ["# `edgemap map --prune-ratios 0,0.25,0.5` on the unseen user models, fine-tuning at its defaults", "",
             "Command: `flock /work/notes/s3/bench.lock nice -n 5 .venv/bin/python benchmarks/unseen_map.py"
             f"{' --val' if val else ''}` (search sized down: `{' '.join(SEARCH)}`; fine-tuning: the map's defaults"
             f"{'; --val-data: images the model never saw' if val else ''}).", ""]
    for name, r in results.items():
        lines += [f"## {name}", "", f"    {r['command']}", ""]
        if "error" in r:
            lines += [f"failed after {r['wall_s']} s: {r['error']}", ""]
            continue
        lines += [f"map wall time **{r['wall_s']:.0f} s**; FP32 top-1 {r['baseline_accuracy']:.2f} %; chosen {r['chosen']} "
                  f"({r['chosen_accuracy']:.2f} %)", "", "| ratio | best candidate | top-1 (10,000) | drop | within 1 point | "
                  "top-1 / drop (1,000 exact) | MACs | fine-tuning | judged on, decision | pruning choice |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for ratio, v in sorted(r["ratios"].items(), key=lambda kv: float(kv[0])):
            lines.append(ratio_row(ratio, v))
        lines.append("")
    flags = evidence.get("cpu_flags") or []
    v = evidence.get("versions") or {}
    lines += [f"Evidence: {evidence.get('cpu')} ({', '.join(f for f in flags if 'vnni' in f) or 'no VNNI'}), "
              f"{evidence.get('logical_cpus')} logical CPUs, load average {evidence.get('load_average')} at the end; "
              f"torch {v.get('torch')}, onnxruntime {v.get('onnxruntime')}, torch-pruning {v.get('torch-pruning')}. "
              "The host is shared by several sessions: wall times are inflated by their load."]
    return lines


def ratio_row(ratio: str, v: dict) -> str:
    """One table row: accuracy on the whole test split and the exact 1,000, MACs, the budget and the decision."""
    from edgemap.compress.prune_widths import macs_line

    ft = v.get("finetune") or {}
    text = (ft.get("budget_used") or "") + (f"; given up: {ft['given_up']}" if ft.get("given_up") else "")
    d = ft.get("decision") or {}
    judged = (f"{ft.get('judged_on', '')}: {d.get('text', '')}, {d.get('verdict', '')}" if d else "")
    exact = v["test_check"]
    return (f"| {ratio} | {v['best_candidate']} | {v['accuracy']:.2f} | {v['drop']:.2f} | "
            f"{'yes' if v['within_1_point'] else 'no'} | {exact['top1_exact1000']:.2f} / "
            f"{v['drop_exact1000'] if v['drop_exact1000'] is not None else '-'} | "
            f"{macs_line(*ft['macs']) if ft.get('macs') else ''} | {text} | {judged} | {v.get('pruning') or ''} |")


def main() -> None:
    from compress_common import write_result_json
    from edgemap.core.atomic import write_text
    from edgemap.core.evidence import machine_evidence

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="graynet,dwhsnet")
    ap.add_argument("--work", type=Path, default=Path("/tmp/unseen_map"))
    ap.add_argument("--tag", default="")
    ap.add_argument("--val", action="store_true", help="give each map --val-data (images the model never saw)")
    args = ap.parse_args()
    results = {}
    for name in args.models.split(","):
        results[name] = run_map(name, args.work / name, args.val)
        print(json.dumps({name: {k: v for k, v in results[name].items() if k != "console"}}, indent=1), flush=True)
    evidence = machine_evidence()
    out = ROOT / "benchmarks" / "results" / f"unseen_map{args.tag}"
    write_result_json(out.with_suffix(".json"), {"results": results, "evidence": evidence, "search": SEARCH,
                                                 "ratios": RATIOS, "val_data": args.val})
    write_text(out.with_suffix(".md"), "\n".join(report_lines(results, evidence, args.val)) + "\n")


if __name__ == "__main__":
    main()
