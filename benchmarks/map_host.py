"""Issue 5 targets for `edgemap map` on this host: the chosen mapping of the shipped model vs PyTorch eager FP32
and vs the best plain INT8 conversion (no pruning), batch 1, in one run (the map's comparison step,
interleaved by bursts: see edgemap/runtime/latency.py).

    EDGEMAP_CIFAR10=/work/shared/data/cifar10 .venv/bin/python benchmarks/map_host.py
    # same as: edgemap map --device host --max-accuracy-drop 1.0 --data /work/shared/data/cifar10 \
    #   --train-data /work/shared/data/cifar10 --prune-ratios 0,0.25 --finetune-epochs 30 --trials 24 \
    #   --backends onnxruntime,openvino,litert --out out/bench/map_host
    # -> benchmarks/results/map_host.{json,md}

Targets (recorded true/false): the chosen mapping is >= 10x faster than PyTorch eager FP32 (p50, the map's own
`comparison`: every file alone in fresh processes, --timing-rounds alternating rounds, edgemap/search/robust.py);
it is at least as fast as the best plain INT8 conversion (p50) at no worse top-1. The same rows are then timed
in one process, bursts and call by call, to show what isolation changes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from compress_common import ROOT, SHARED_CIFAR, write_results

# ---- settings --------------------------------------------------------------------------------
PRUNE_RATIOS = (0.0, 0.25)        # 0 = no pruning; the others are pruned + fine-tuned (distilled) once, cached
FINETUNE_EPOCHS = 30              # 50k images per epoch, ~30 s each (distilled, JPEG-augmented) on the idle 2-core CPU;
                                  # 16 left the 0.25-pruned model at drop 1.09, just outside the 1-point limit
TRIALS = 24                       # distinct candidates the search evaluates (the grid has 60)
LATENCY_RUNS = 100                # timed batch-1 runs per candidate during the search
EXTRA_ROUNDS = 4                  # the map's isolated timing rounds (--timing-rounds), for the spread of the speed-ups
MAX_DROP = 1.0                    # points of top-1 the mapping may lose
OUT = ROOT / "out" / "bench" / "map_host"
# ------------------------------------------------------------------------------------------------


def options(args: argparse.Namespace):  # noqa: ANN201 - MapOptions
    """The map's options, as `edgemap map` would build them from the command in the module doc."""
    from edgemap.search.mapper import MapOptions
    from edgemap.search.strategy import Constraints

    return MapOptions(model=args.model, device="host", constraints=Constraints(max_accuracy_drop=MAX_DROP),
                      trials=args.trials, seed=args.seed, out_dir=args.out, eval_data=args.data, train_data=args.train_data,
                      prune_ratios=tuple(args.prune_ratios), finetune_epochs=args.finetune_epochs, latency_runs=args.latency_runs,
                      backends=tuple(args.backends), timing_rounds=args.rounds, progress=False)


def in_process_checks(opts, summary) -> dict:  # noqa: ANN001 - MapOptions, SearchSummary
    """The map's comparison rows timed again in this process (the job re-prepared from its caches): call by call
    (A B C A B C ...), and PyTorch eager at each thread count beside the chosen mapping."""
    from rich.console import Console

    from edgemap.search import workflow

    job = workflow.prepare(opts, Console(stderr=True))
    rows = summary.comparison
    return {"per_call_interleaved": per_call(job, rows, max(200, opts.latency_runs)),
            "eager_by_threads": eager_by_threads(job, rows, opts.threads, max(200, opts.latency_runs))}


def eager_by_threads(job, rows: dict, threads: tuple[int, ...], runs: int) -> dict:  # noqa: ANN001 - workflow.Job
    """PyTorch eager at each thread count of the space, timed by bursts beside the chosen mapping, one run per count
    (the comparison gives eager max(threads) only, and torch's thread count is global to the process)."""
    from edgemap.runtime.registry import load_session
    from edgemap.search.evaluate import eval_arrays
    from edgemap.runtime.latency import measure_interleaved

    x1 = eval_arrays(job.ctx.eval_npz)[0][:1].copy()
    c, out = rows["chosen"], {}
    for t in threads:
        with load_session(c["backend"], c["model"], c["threads"]) as s, load_session("torch", rows["torch_eager_fp32"]["model"], t) as e:
            lat = measure_interleaved({"chosen": lambda: s.run(x1, check_finite=False), "eager": lambda: e.run(x1, check_finite=False)},
                                 runs=runs, warmup=30)
        out[f"t{t}"] = {k: {"p50_ms": round(v["p50_ms"], 4), "p99_ms": round(v["p99_ms"], 4), "min_ms": round(v["min_ms"], 4)}
                        for k, v in lat.items()} | {"ratio_p50": round(lat["eager"]["p50_ms"] / lat["chosen"]["p50_ms"], 3)}
    best = min(out, key=lambda k: out[k]["eager"]["p50_ms"])
    return {"by_threads": out, "best_threads": best, "ratio_vs_best_eager": out[best]["ratio_p50"],
            "ge_10x": out[best]["ratio_p50"] >= 10}


def per_call(job, rows: dict, runs: int) -> dict:  # noqa: ANN001 - workflow.Job
    """p50/p99 of the comparison's rows with call-by-call interleaving (runtime.latency.measure_interleaved)."""
    from edgemap.runtime.latency import measure_interleaved
    from edgemap.runtime.registry import load_session
    from edgemap.search.evaluate import eval_arrays

    x1 = eval_arrays(job.ctx.eval_npz)[0][:1].copy()
    keep = {k: v for k, v in rows.items() if k != "best_plain_int8"}
    sessions = {k: load_session(v["backend"], v["model"], v["threads"]) for k, v in keep.items()}
    try:
        lat = measure_interleaved({k: (lambda s=s: s.run(x1, check_finite=False)) for k, s in sessions.items()}, runs=runs, warmup=30,
                                  burst=1)
    finally:
        for s in sessions.values():
            s.close()
    return {k: {"p50_ms": round(v["p50_ms"], 4), "p99_ms": round(v["p99_ms"], 4)} for k, v in lat.items()}


def ratio(cmp: dict, slow: str) -> dict:
    """median(slow) / median(chosen) in the map's isolated timing, with its range over the rounds."""
    if slow not in cmp:
        return {}
    row = cmp[slow]
    return {"ratio": row["speedup_vs_chosen"], "range": row["speedup_range"], "verdict": row["verdict"]}


def targets(summary, cmp: dict) -> dict:  # noqa: ANN001 - SearchSummary
    """Each issue-5 target, with the figures it was judged on (the map's own isolated timing)."""
    chosen = summary.chosen
    out = {"speedup_vs_torch_eager_fp32": ratio(cmp, "torch_eager_fp32"), "speedup_vs_best_plain_int8": ratio(cmp, "best_plain_int8")}
    out["ge_10x_faster_than_eager"] = out["speedup_vs_torch_eager_fp32"].get("ratio", 0) >= 10
    if "best_plain_int8" in cmp:
        int8 = summary.trial(cmp["best_plain_int8"]["key"])
        out["best_plain_int8"] = {"key": int8.key, "accuracy": int8.accuracy, "accuracy_drop": int8.accuracy_drop}
        out["same_model_as_best_plain_int8"] = chosen.key == int8.key  # then the two rows differ by noise only
        out["at_least_as_fast_as_best_plain_int8"] = (cmp["chosen"]["p50_ms"] <= cmp["best_plain_int8"]["p50_ms"]
                                                      or out["same_model_as_best_plain_int8"])
        out["accuracy_no_worse_than_best_plain_int8"] = chosen.accuracy >= int8.accuracy
    return out


def pruned_note(summary) -> dict:  # noqa: ANN001 - SearchSummary
    """Best top-1 drop reached by each pruning ratio among the tried candidates (more than MAX_DROP: infeasible)."""
    out: dict = {}
    for t in summary.trials:
        if t.ok:
            r = f"{t.candidate.prune_ratio:g}"
            out[r] = min(out.get(r, 1e9), round(t.accuracy_drop, 3))
    return {r: {"best_drop": d, "within_limit": d <= MAX_DROP} for r, d in sorted(out.items())}


def record(args: argparse.Namespace, summary, load: dict) -> dict:  # noqa: ANN001 - SearchSummary
    """Everything the results file keeps: command, options, chosen mapping, latencies, targets, evidence."""
    from edgemap.core.evidence import machine_evidence

    c = summary.chosen
    chosen = None if c is None else {k: v for k, v in c.to_dict().items() if k in (
        "key", "candidate", "accuracy", "accuracy_exact", "accuracy_drop", "latency_ms", "latency_basis", "size_bytes", "model_path")}
    return {"command": " ".join([".venv/bin/python"] + sys.argv), "model": str(args.model or "shipped"),
            "data": summary.data, "eval_data": str(args.data or "shipped sample"), "baseline_accuracy": summary.baseline_accuracy,
            "settings": {"prune_ratios": args.prune_ratios, "finetune_epochs": args.finetune_epochs, "trials": args.trials,
                         "latency_runs": args.latency_runs, "timing_rounds": args.rounds, "max_accuracy_drop": MAX_DROP,
                         "seed": args.seed},
            "chosen": chosen, "front": list(summary.front), "finalists": summary.finalists,
            "pruned": pruned_note(summary), "failed": summary.failed,
            "trials": [{"key": t.key, "accuracy": t.accuracy, "accuracy_drop": t.accuracy_drop, "latency_ms": t.latency_ms,
                        "size_bytes": t.size_bytes, "error": t.error} for t in summary.trials],
            "comparison": summary.comparison, "timing": {k: v for k, v in summary.timing.items() if k != "timings"},
            "claims": targets(summary, summary.comparison) if c else {},
            "map_wall_s": summary.wall_s, "map_results": str(Path(args.out) / "results.json"),
            "load_average": load, "evidence": machine_evidence()}


def markdown(rec: dict) -> list[str]:
    """The short summary (results/map_host.md)."""
    c, t, cmp = rec["chosen"], rec["claims"], rec["comparison"]
    lines = [f"# edgemap map on the host: {Path(rec['model']).name}", "", f"Command: `{rec['command']}`  ",
             f"Evaluation: {rec['eval_data']} ({rec['data']}); baseline FP32 ONNX Runtime top-1 {rec['baseline_accuracy']:.2f}%  ",
             f"Load average: {rec['load_average']}; CPU: {rec['evidence']['cpu']} ({rec['evidence']['logical_cpus']} logical)", ""]
    if c is None:
        return lines + ["No mapping met the constraints."]
    lines += [f"Chosen: **{c['key']}**, top-1 {c['accuracy']:.2f}% (drop {c['accuracy_drop']:.2f} points)", "",
              f"Timing: {rec['timing'].get('method')}; {rec['timing'].get('rounds')} rounds; {rec['timing'].get('cpu')}", "",
              "| row | backend | threads | median p50 ms | rounds' range ms | x the chosen's time | verdict |", "|---|---|---|---|---|---|---|"]
    for k, v in cmp.items():
        lines.append(f"| {k} | {v['backend']} | {v['threads']} | {v['p50_ms']:.4f} | {v['spread_ms'][0]:.4f}-{v['spread_ms'][1]:.4f} | "
                     f"{v['speedup_vs_chosen']:.2f} | {v['verdict']} |")
    e, i = t["speedup_vs_torch_eager_fp32"], t.get("speedup_vs_best_plain_int8", {})
    lines += ["", f"- vs PyTorch eager FP32: {e.get('ratio')}x (range {e.get('range')}) -> >= 10x: **{t['ge_10x_faster_than_eager']}**"]
    if i:
        b = t["best_plain_int8"]
        lines.append(f"- vs best plain INT8 ({b['key']}, top-1 {b['accuracy']:.2f}%): {i['ratio']}x (range {i['range']}, "
                     f"{i['verdict']}) -> at least as fast: **{t['at_least_as_fast_as_best_plain_int8']}**, "
                     f"accuracy no worse: **{t['accuracy_no_worse_than_best_plain_int8']}**"
                     + (" (the chosen mapping *is* that conversion: the two rows differ by noise only)" if t["same_model_as_best_plain_int8"] else ""))
    if rec.get("per_call_interleaved"):
        lines.append("- the same rows timed call by call (A B C A B C, not bursts), p50 ms: " + ", ".join(
            f"{k} {v['p50_ms']:.4f}" for k, v in rec["per_call_interleaved"].items()))
    if rec.get("eager_by_threads"):
        eb = rec["eager_by_threads"]
        lines.append("- PyTorch eager at each thread count beside the chosen mapping (bursts): " + ", ".join(
            f"{k}: eager p50 {v['eager']['p50_ms']:.4f} ms, {v['ratio_p50']}x" for k, v in eb["by_threads"].items())
            + f" -> vs the best eager ({eb['best_threads']}): {eb['ratio_vs_best_eager']}x, >= 10x: **{eb['ge_10x']}**")
    lines.append("- pruning (best drop among tried candidates per ratio): " + ", ".join(
        f"{r}: {v['best_drop']:.2f}{'' if v['within_limit'] else ' (> limit)'}" for r, v in rec["pruned"].items()))
    return lines


def main() -> None:
    """Run the map, repeat its comparison, judge the targets, write results/NAME.{json,md}."""
    from edgemap.search.mapper import run_map

    cifar = Path(os.environ.setdefault("EDGEMAP_CIFAR10", str(SHARED_CIFAR)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="checkpoint (default: the shipped model)")
    ap.add_argument("--data", type=Path, default=cifar, help="evaluation data (default: the 10,000 CIFAR-10 test images)")
    ap.add_argument("--train-data", type=Path, default=cifar)
    ap.add_argument("--finetune-epochs", type=int, default=FINETUNE_EPOCHS)
    ap.add_argument("--prune-ratios", type=float, nargs="+", default=list(PRUNE_RATIOS))
    ap.add_argument("--backends", nargs="+", default=["onnxruntime", "openvino", "litert"],
                    help="backends the search tries (edgemap map --backends)")
    ap.add_argument("--trials", type=int, default=TRIALS)
    ap.add_argument("--latency-runs", type=int, default=LATENCY_RUNS)
    ap.add_argument("--rounds", type=int, default=EXTRA_ROUNDS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--name", default="map_host", help="results file stem")
    args = ap.parse_args()
    opts = options(args)
    load = {"before": list(os.getloadavg())}
    summary = run_map(opts)
    load["after_map"] = list(os.getloadavg())
    checks = in_process_checks(opts, summary) if summary.chosen else {}
    load["after_checks"] = list(os.getloadavg())
    rec = record(args, summary, load) | checks
    write_results(args.name, rec, markdown(rec))


if __name__ == "__main__":
    main()
