"""Issue 6 targets for `edgemap map` on a user's own model and image folder (ByomNet, benchmarks/byom_make.py):
the chosen mapping vs ONNX Runtime FP32 on the same model, batch 1, on this host.

    .venv/bin/python benchmarks/byom_map.py            # both runs -> benchmarks/results/byom_map.{json,md}
    # run "noprune" is: edgemap map --model out/byom/byom_net.onnx --data out/byom/data/test \\
    #   --preprocess "resize=48x48,scale=1/255,mean=0.5,std=0.25" --device host --max-accuracy-drop 1.0 \\
    #   --trials 24 --out out/bench/byom_map/noprune
    # run "prune" adds: --train-data out/byom/data/train --prune-ratios 0,0.5 --finetune-epochs 80

Targets (recorded true/false, judged on the map's own timing, rows "chosen" and "onnxruntime_fp32"): without
pruning the chosen mapping is >= 2.5x faster; with pruning + fine-tuning >= 4x. The map times every file alone in
fresh processes at every thread count for ROUNDS alternating rounds (edgemap/search/robust.py); a row's figure is
the median of its round medians at its faster thread count, with the rounds' range, so the FP32 row is already the
stricter of its thread counts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from compress_common import ROOT, write_results

# ---- settings --------------------------------------------------------------------------------
MODEL = ROOT / "out" / "byom" / "byom_net.onnx"  # made by benchmarks/byom_make.py (~9 min)
EVAL = ROOT / "out" / "byom" / "data" / "test"   # 5 x 1,000 test images, 48 x 48 PNG
TRAIN = ROOT / "out" / "byom" / "data" / "train"  # 5 x 5,000 training images
PREPROCESS = "resize=48x48,scale=1/255,mean=0.5,std=0.25"
PRUNE_RATIOS = (0.0, 0.5)        # run "prune" only; pruned once per ratio, fine-tuned with distillation, cached
FINETUNE_EPOCHS = 80             # 25,000 images per epoch, ~9 s each on the idle 2-core CPU (0.5: drop 1.80 after 12,
                                 # 0.96 FP32 / 1.10 INT8 after 40, 0.68-0.72 after 80)
TRIALS = 24                      # distinct candidates per run
LATENCY_RUNS = 100               # timed batch-1 runs per candidate during the search
ROUNDS = 4                       # the map's isolated timing rounds (--timing-rounds), for the spread of the ratios
MAX_DROP = 1.0                   # points of top-1 the mapping may lose
TARGETS = {"noprune": 2.5, "prune": 4.0}  # p50(ORT FP32) / p50(chosen)
OUT = ROOT / "out" / "bench" / "byom_map"
# ------------------------------------------------------------------------------------------------


def cli_command(args: argparse.Namespace, run: str) -> str:
    """The `edgemap map` command line this run is equivalent to."""
    cmd = (f"edgemap map --model {rel(args.model)} --data {rel(args.data)} --preprocess \"{PREPROCESS}\" --device host "
           f"--max-accuracy-drop {MAX_DROP:g} --trials {args.trials} --latency-runs {args.latency_runs} --seed {args.seed} "
           f"--timing-rounds {args.rounds} --out {rel(args.out / run)}")
    if run == "prune":
        cmd += (f" --train-data {rel(args.train_data)} --prune-ratios {','.join(f'{r:g}' for r in args.prune_ratios)}"
                f" --finetune-epochs {args.finetune_epochs}")
    return cmd


def rel(p: Path) -> str:
    """A path relative to the repository root when it lies inside it."""
    p = Path(p).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def options(args: argparse.Namespace, run: str):  # noqa: ANN201 - MapOptions
    """The map's options, as `edgemap map` builds them from cli_command(args, run)."""
    from edgemap.search.mapper import MapOptions
    from edgemap.search.strategy import Constraints

    prune = run == "prune"
    return MapOptions(model=str(args.model), device="host", constraints=Constraints(max_accuracy_drop=MAX_DROP),
                      trials=args.trials, seed=args.seed, out_dir=args.out / run, eval_data=args.data,
                      train_data=args.train_data if prune else None, preprocess=PREPROCESS,
                      prune_ratios=tuple(args.prune_ratios) if prune else (0.0,), finetune_epochs=args.finetune_epochs,
                      latency_runs=args.latency_runs, timing_rounds=args.rounds, progress=args.progress)


def diagnose(opts, job, summary, rounds: int) -> dict:  # noqa: ANN001 - MapOptions, workflow.Job, SearchSummary
    """Why the speed-up is what it is (evidence only, never used to judge a target): beside the chosen mapping and
    ONNX Runtime FP32, an Identity graph (the fixed cost of one call) and the chosen model re-quantized with its
    first and last layers in float (QuantizeStatic.float_first_last; since a5667b3 the search's own INT8 is built so).
    In-process bursts (edgemap.runtime.latency), unlike the map's own timing (each file alone in a fresh process)."""
    from edgemap.runtime.onnxruntime_backend import OrtSession
    from edgemap.search.evaluate import eval_arrays, accuracy
    from edgemap.runtime.latency import measure_interleaved

    c = summary.chosen.candidate
    if c.precision != "int8" or c.backend != "onnxruntime":
        return {"skipped": "the chosen mapping is not ONNX Runtime INT8"}
    work = Path(job.ctx.work_dir) / "diagnose"
    ffl = float_first_last(job, c)
    x, labels, exact = eval_arrays(job.ctx.eval_npz)
    rows = {"chosen": (summary.chosen.model_path, c.threads), "chosen_float_first_last": (str(ffl), c.threads),
            "identity_graph": (str(identity_graph(work, x.shape[1:])), 1)}
    rows |= {f"onnxruntime_fp32_t{t}": (job.ctx.fp32_onnx, t) for t in opts.threads}
    sessions = {k: OrtSession(pth, threads=t) for k, (pth, t) in rows.items()}
    try:
        x1 = x[:1].copy()
        lat = [measure_interleaved({k: (lambda s=s: s.run(x1, check_finite=False)) for k, s in sessions.items()},
                              runs=max(200, opts.latency_runs), warmup=30) for _ in range(rounds)]
        top1 = accuracy(sessions["chosen_float_first_last"], x, labels, exact)[0]
    finally:
        for s in sessions.values():
            s.close()
    p50 = {k: [r[k]["p50_ms"] for r in lat] for k in rows}
    return {"p50_ms": {k: spread(v, 4) for k, v in p50.items()}, "float_first_last_accuracy": top1,
            "float_first_last_drop": job.ctx.baseline_accuracy - top1,
            "float_first_last_speedup_vs_fp32_map_threads": spread([a / b for a, b in zip(
                p50[f"onnxruntime_fp32_t{max(opts.threads)}"], p50["chosen_float_first_last"])])}


def float_first_last(job, c) -> Path:  # noqa: ANN001 - workflow.Job, Candidate
    """The chosen candidate's INT8 model with its first and last layers in float, built by the recipe runner from
    the candidate's own recipe (since a5667b3 the search's INT8 is built so: the same file, from the cache)."""
    from edgemap.search.candidate import Candidate
    from edgemap.search.evaluate import build_candidate

    cand = Candidate(c.prune_ratio, "int8", c.calibration, "onnxruntime", 1)
    return Path(build_candidate(job.ctx, cand).artifact.path)


def identity_graph(folder: Path, shape: tuple) -> Path:
    """A one-node ONNX graph (Identity) with the model's input shape: what one ONNX Runtime call costs at least."""
    import onnx
    from onnx import TensorProto, helper

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "identity.onnx"
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, *shape]) for n in ("x", "y")]
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", vi[:1], vi[1:])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def spread(vals: list[float], nd: int = 3) -> dict:
    """First value (the map's own run) and median/min/max over all."""
    return {"map_run": round(vals[0], nd), "median": round(statistics.median(vals), nd), "min": round(min(vals), nd),
            "max": round(max(vals), nd), "runs": len(vals)}


def latency_rows(cmp: dict) -> dict:
    """The map's comparison rows (each file alone in fresh processes, every thread count, median of the round
    medians at its best thread count, with the rounds' range)."""
    return {k: {"backend": v["backend"], "threads": v["threads"], "model": rel(Path(v["model"])), "key": v.get("key"),
                "p50_ms": v["p50_ms"], "spread_ms": v["spread_ms"], "round_ms": v["round_ms"],
                "speedup_vs_chosen": v["speedup_vs_chosen"], "verdict": v["verdict"]} for k, v in cmp.items()}


def finetuning(summary) -> dict:  # noqa: ANN001 - SearchSummary
    """Per pruning ratio: the fastest tried candidate, the best drop and, for pruned ones, how fine-tuning went."""
    out: dict = {}
    for t in sorted((t for t in summary.trials if t.ok), key=lambda t: t.latency_ms):
        r = f"{t.candidate.prune_ratio:g}"
        out.setdefault(r, {"fastest": t.key, "fastest_latency_ms": round(t.latency_ms, 4), "best_drop": 1e9})
        out[r]["best_drop"] = round(min(out[r]["best_drop"], t.accuracy_drop), 3)
    for r, info in summary.finetune.items():
        out.setdefault(r, {"best_drop": 1e9})["finetune"] = info
    return {r: v | {"within_limit": v["best_drop"] <= MAX_DROP} for r, v in sorted(out.items())}


def chosen_record(summary) -> dict | None:  # noqa: ANN001 - SearchSummary
    """The chosen mapping's identity, accuracy and search-time latency."""
    c = summary.chosen
    if c is None:
        return None
    return {"key": c.key, "candidate": c.candidate.to_dict(), "accuracy": c.accuracy, "accuracy_exact": c.accuracy_exact,
            "accuracy_drop": c.accuracy_drop, "latency_ms": c.latency_ms, "latency_basis": c.latency_basis,
            "size_bytes": c.size_bytes, "model_path": rel(Path(c.model_path)), "host_latency": c.host_latency}


def judge(summary, target: float) -> dict:  # noqa: ANN001 - SearchSummary
    """The target on the map's own timing: ONNX Runtime FP32 at its faster thread count over the chosen mapping, the
    ratio of the medians and its range over the rounds (met_on_range: even the least favourable rounds meet it)."""
    if summary.chosen is None:
        return {"target_x": target, "met": False, "why": "no mapping met the constraints"}
    row = summary.comparison["onnxruntime_fp32"]
    lo, hi = row["speedup_range"]
    return {"target_x": target, "speedup_vs_onnxruntime_fp32": row["speedup_vs_chosen"], "range": [lo, hi],
            "fp32_threads": row["threads"], "verdict": row["verdict"], "met": row["speedup_vs_chosen"] >= target,
            "met_on_range": lo >= target}


def eval_images(job) -> dict:  # noqa: ANN001 - workflow.Job
    """How many images (per class) the accuracies were measured on."""
    import numpy as np

    from edgemap.search.evaluate import eval_arrays

    labels = eval_arrays(job.ctx.eval_npz)[1]
    counts = np.bincount(labels, minlength=len(job.class_names))
    return {"n": int(len(labels)), "per_class": dict(zip(job.class_names, (int(c) for c in counts))), "note": job.data_note}


def loadavg() -> list[float]:
    """1, 5 and 15 minute load averages, rounded."""
    return [round(v, 2) for v in os.getloadavg()]


def finished_map(opts) -> tuple:  # noqa: ANN001 - MapOptions -> (SearchSummary, load averages)
    """The summary of a map that already ran with these options (its results.json), and the load it recorded."""
    import json

    from edgemap.search.records import SearchSummary

    path = Path(opts.out_dir) / "results.json"
    if not path.is_file():
        sys.exit(f"--from-results: {path} not found (run the map first)")
    summary = SearchSummary.from_dict(json.loads(path.read_text()))
    return summary, {"at_map_end": summary.evidence.get("load_average"), "record_made": loadavg()}


def one_run(args: argparse.Namespace, run: str) -> dict:
    """One map (as cli_command says), the target judged on its own timing; everything the record keeps. With
    --from-results the record is made from the map's results.json (no map, no diagnosis: nothing is timed)."""
    from rich.console import Console

    from edgemap.search import workflow
    from edgemap.search.mapper import run_map

    opts = options(args, run)
    if args.from_results:
        summary, load = finished_map(opts)
    else:
        load = {"before": loadavg()}
        summary = run_map(opts)
        load["after_map"] = loadavg()
    job = workflow.prepare(opts, Console(stderr=True))  # from the map's caches
    timed = summary.chosen and not args.from_results
    why = diagnose(opts, job, summary, args.rounds) if timed else {"skipped": "record made from a finished map"}
    load["after_diagnosis"] = loadavg()
    return {"edgemap_command": cli_command(args, run), "eval_images": eval_images(job),
            "baseline_accuracy": summary.baseline_accuracy, "chosen": chosen_record(summary),
            "front": list(summary.front), "finalists": summary.finalists, "failed": summary.failed,
            "nearest": [m.key for m in summary.nearest], "per_ratio": finetuning(summary),
            "trials": [{"key": t.key, "accuracy": t.accuracy, "accuracy_drop": t.accuracy_drop, "latency_ms": t.latency_ms,
                        "size_bytes": t.size_bytes, "error": t.error} for t in summary.trials],
            "comparison": latency_rows(summary.comparison), "timing": {k: v for k, v in summary.timing.items() if k != "timings"},
            "claims": judge(summary, TARGETS[run]), "diagnosis": why, "map_wall_s": summary.wall_s,
            "map_results": rel(Path(opts.out_dir) / "results.json"), "bundle": summary.bundle, "load_average": load}


def run_lines(run: str, r: dict) -> list[str]:
    """The markdown section of one run."""
    e, c, t = r["eval_images"], r["chosen"], r["claims"]
    lines = [f"## {run}", "", f"`{r['edgemap_command']}`  ", f"Evaluated on {e['n']} images ({e['note']}); baseline "
             f"FP32 ONNX Runtime top-1 **{r['baseline_accuracy']:.2f}%**; load average {r['load_average']}", ""]
    if c is None:
        return lines + [f"No mapping met the constraints; nearest: {', '.join(r['nearest'])}", ""]
    lines += [f"Chosen: **{c['key']}**, top-1 {c['accuracy']:.2f}% (drop {c['accuracy_drop']:.2f} points), "
              f"{c['size_bytes'] / 1e3:.0f} KB", "", f"Timing: {r['timing'].get('method')}; {r['timing'].get('rounds')} rounds x "
              f"{r['timing'].get('runs')} runs; {r['timing'].get('cpu')}", "",
              "| row | backend | threads | median p50 ms | rounds' range ms | x the chosen's time | verdict |", "|---|---|---|---|---|---|---|"]
    for k, v in r["comparison"].items():
        lines.append(f"| {k} | {v['backend']} | {v['threads']} | {v['p50_ms']:.4f} | {v['spread_ms'][0]:.4f}-{v['spread_ms'][1]:.4f} | "
                     f"{v['speedup_vs_chosen']:.2f} | {v['verdict']} |")
    lines += ["", f"- speed-up vs ONNX Runtime FP32 (its faster thread count, {t['fp32_threads']}): **{t['speedup_vs_onnxruntime_fp32']}x** "
              f"(range {t['range'][0]}-{t['range'][1]}x over the rounds) -> >= {t['target_x']}x: **{t['met']}** "
              f"(on the whole range: {t['met_on_range']})"]
    return lines + diagnosis_lines(r["diagnosis"]) + ratio_lines(r["per_ratio"]) + [""]


def ratio_lines(per_ratio: dict) -> list[str]:
    """Per pruning ratio: best drop, fastest candidate (search-time p50), fine-tuning."""
    out = []
    for k, v in per_ratio.items():
        ft = f"; fine-tuning: {v['finetune'].get('budget_used')}" if v.get("finetune") else ""
        fast = f", fastest {v['fastest']} at p50 {v['fastest_latency_ms']:.4f} ms in the search" if "fastest" in v else ""
        out.append(f"- pruning ratio {k}: best drop {v['best_drop']:.2f}{'' if v['within_limit'] else ' (> limit)'}{fast}{ft}")
    return out


def diagnosis_lines(d: dict) -> list[str]:
    """The diagnostic run, in one bullet (evidence for why, not a target)."""
    if not d or "skipped" in d:
        return [f"- diagnosis: {d.get('skipped', 'none')}"] if d else []
    p = ", ".join(f"{k} {v['median']:.4f}" for k, v in d["p50_ms"].items())
    f = d["float_first_last_speedup_vs_fp32_map_threads"]
    return [f"- diagnosis (same burst-interleaved run, median p50 ms over {f['runs']} runs): {p}. Keeping the first and last "
            f"layers in float (QuantizeStatic.float_first_last; the search builds INT8 this way since a5667b3) gives {f['median']}x ({f['min']}-{f['max']}) at top-1 "
            f"{d['float_first_last_accuracy']:.2f}% (drop {d['float_first_last_drop']:.2f})"]


def main() -> None:
    """Run the maps, judge the targets, write results/NAME.{json,md}."""
    from edgemap.core.evidence import machine_evidence

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="noprune,prune", help="which runs: noprune, prune or both")
    ap.add_argument("--model", type=Path, default=MODEL)
    ap.add_argument("--data", type=Path, default=EVAL, help="evaluation image folder (a smaller one is faster)")
    ap.add_argument("--train-data", type=Path, default=TRAIN)
    ap.add_argument("--finetune-epochs", type=int, default=FINETUNE_EPOCHS)
    ap.add_argument("--prune-ratios", type=lambda v: [float(r) for r in v.split(",")], default=list(PRUNE_RATIOS),
                    help="run \"prune\" only: comma-separated channel-pruning ratios (0 = unpruned)")
    ap.add_argument("--trials", type=int, default=TRIALS)
    ap.add_argument("--latency-runs", type=int, default=LATENCY_RUNS)
    ap.add_argument("--rounds", type=int, default=ROUNDS, help="the map's --timing-rounds (and the diagnosis' rounds)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--name", default="byom_map", help="results file stem")
    ap.add_argument("--progress", action="store_true", help="progress bars on stderr")
    ap.add_argument("--from-results", action="store_true", help="make the record from the map's results.json in --out "
                    "(a map that ran with these options) instead of running it")
    args = ap.parse_args()
    if not args.model.is_file():
        sys.exit(f"{args.model} not found: run .venv/bin/python benchmarks/byom_make.py first")
    rec = {"command": " ".join([".venv/bin/python"] + sys.argv), "model": rel(args.model), "preprocess": PREPROCESS,
           "settings": {"prune_ratios": list(args.prune_ratios), "finetune_epochs": args.finetune_epochs, "trials": args.trials,
                        "latency_runs": args.latency_runs, "timing_rounds": args.rounds, "max_accuracy_drop": MAX_DROP,
                        "seed": args.seed, "targets": TARGETS}, "runs": {}}
    for run in (r.strip() for r in args.runs.split(",") if r.strip()):
        rec["runs"][run] = one_run(args, run)
    rec["evidence"] = machine_evidence()
    lines = [f"# edgemap map on a user's model and images: {rec['model']}", "", f"Command: `{rec['command']}`  ",
             f"CPU: {rec['evidence']['cpu']} ({rec['evidence']['logical_cpus']} logical), shared with other jobs", ""]
    write_results(args.name, rec, lines + [ln for run, r in rec["runs"].items() for ln in run_lines(run, r)])


if __name__ == "__main__":
    main()
