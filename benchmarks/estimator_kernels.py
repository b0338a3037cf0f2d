"""How good is the kernel-level latency predictor on networks it was not fitted on?

Validation models: `--per-family` networks from each of the 10 families in estimator_families.py
(whole CNNs; the kernel sampler only ever built one-to-four-node blocks), each FP32 and static
QDQ INT8, batch 1, ONNX Runtime CPU, 1 and 2 threads. Each is predicted from the host's kernel
records (edgemap/devices/profiles/host.kernels.json.gz, written by `edgemap devices
calibrate-host`) and measured here in passes (A, B, ...; all models interleaved in bursts, both thread counts in
each pass, in alternating order):
the A/B difference is the run-to-run noise reported beside the errors. The statistic measured
and predicted is the mean of the 10th-50th percentile band of the call times (what the
kernels were fitted to; the machine is shared, the upper half is the neighbours); errors
against the plain median are reported too, and so are the old per-layer roofline's errors.

Choice agreement (estimator_choice.py): for one model per family, the search's own rule picks among
the candidates precision x threads with estimated and with measured latencies, strictly and within
each candidate's measured noise (--passes passes, default 3).

    nice -n 5 .venv/bin/python benchmarks/estimator_kernels.py [--per-family 4] [--runs 60] [--passes 3] [--zoo] [--tag NAME]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from estimator_choice import choice_markdown, choice_rows, choice_summary, thread_bias  # noqa: E402

# ---- settings ------------------------------------------------------------------------------
THREADS = (1, 2)
PRECISIONS = ("fp32", "int8")
BURST = 10
ZOO = ("resnet9s", "mobilenetv2", "writeup_cnn", "tiny")  # reported apart: not from the generated families
RESULTS = Path(__file__).resolve().parent / "results"


def build(per_family: int, out: Path) -> dict[tuple[str, str], Path]:
    """(model name, precision) -> ONNX file, FP32 and QDQ INT8 of every generated network."""
    import onnx

    from edgemap.devices.kernels.sampler import quantize
    from estimator_families import generate

    paths = {}
    for name, (model, _) in generate(per_family).items():
        paths[(name, "fp32")] = out / f"{name}_fp32.onnx"
        onnx.save(model, str(paths[(name, "fp32")]))
        paths[(name, "int8")] = out / f"{name}_int8.onnx"
        paths[(name, "int8")].write_bytes(quantize(model))
    return paths


def build_zoo(out: Path) -> dict[tuple[str, str], Path]:
    """The shipped zoo architectures exported by PyTorch (random weights), FP32 and QDQ INT8 as
    estimator_validation.py makes them: real exporter output, not generated graphs."""
    import torch

    from edgemap.convert.onnx_export import export_onnx
    from edgemap.models import zoo
    from estimator_validation import to_int8

    torch.manual_seed(0)
    paths = {}
    for name in ZOO:
        fp32 = export_onnx(zoo.build(name), out / f"zoo_{name}_fp32.onnx")
        paths[(f"zoo:{name}", "fp32")], paths[(f"zoo:{name}", "int8")] = fp32, to_int8(fp32, out / f"zoo_{name}_int8.onnx")
    return paths


def measure(paths: dict, threads: int, runs: int) -> dict:
    """Per model: quiet time and median (seconds) of `runs` timed calls, all models interleaved in bursts."""
    import onnxruntime as ort

    from edgemap.devices.kernels.ortgraph import session_options
    from edgemap.devices.kernels.profiling import feeds_for, quiet_time

    sessions = {k: ort.InferenceSession(str(p), session_options(threads), providers=["CPUExecutionProvider"]) for k, p in paths.items()}
    feeds = {k: feeds_for(s) for k, s in sessions.items()}
    samples: dict = {k: [] for k in paths}
    for _ in range(max(1, runs // BURST)):
        for k, s in sessions.items():
            s.run(None, feeds[k])  # pays for the previous session's spinning threads
            for _ in range(BURST):
                t0 = time.perf_counter()
                s.run(None, feeds[k])
                samples[k].append(time.perf_counter() - t0)
    return {k: {"quiet": quiet_time(v), "median": float(np.median(v))} for k, v in samples.items()}


def predict(paths: dict, threads: int, pred) -> dict:  # noqa: ANN001 - KernelPredictor
    """Kernel-level prediction and the old roofline estimate (seconds) per model."""
    from edgemap.devices.estimate import estimate
    from edgemap.devices.kernels.predict import predict_model

    out = {}
    for k, p in paths.items():
        kl = predict_model(p, pred, threads)
        roof = estimate(p, "host", threads=threads, kernel_level=False).latency_s.value
        out[k] = {"kernel": kl.total_s, "roofline": roof, "kernels": len(kl.rows), "warnings": kl.warnings}
    return out


def errors(rows: list[dict], key: str, ref: str) -> dict:
    """Median |error|, share within +-10 %, Spearman rank correlation of rows[key] against rows[ref]."""
    from scipy.stats import spearmanr

    if not rows:
        return {}
    p, m = np.array([r[key] for r in rows]), np.array([r[ref] for r in rows])
    e = np.abs(p / m - 1)
    return {"n": len(rows), "median_abs_err_pct": round(100 * float(np.median(e)), 1),
            "within_10pct": round(100 * float(np.mean(e <= 0.10)), 1), "spearman": round(float(spearmanr(p, m)[0]), 4),
            "max_abs_err_pct": round(100 * float(e.max()), 1)}


def main() -> None:
    """Build, predict, measure twice, summarise; write results/estimator_kernels.{json,md}."""
    import onnxruntime as ort

    from edgemap.core.atomic import write_text
    from compress_common import write_result_json  # the JSON, and the same run in the results store
    from edgemap.core.evidence import machine_evidence
    from edgemap.devices.kernels.device import records_path
    from edgemap.devices.kernels.store import isa_tag, load_predictor

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-family", type=int, default=4, help="networks per family (10 families)")
    ap.add_argument("--runs", type=int, default=60, help="timed calls per model, per pass and thread count")
    ap.add_argument("--passes", type=int, default=3, help="measurement passes (>= 2): their spread is each candidate's noise")
    ap.add_argument("--zoo", action="store_true", help="also the zoo's PyTorch-exported models, in a table of their own")
    ap.add_argument("--tag", default="", help="suffix of the result files (a repeat run beside the first)")
    args = ap.parse_args()
    ort.set_default_logger_severity(3)
    path = records_path("host")
    loaded = load_predictor(path) if path else None
    if loaded is None:
        sys.exit(f"no kernel records for this CPU ({isa_tag()}): run edgemap devices calibrate-host first")
    pred, rec = loaded
    from edgemap.devices.kernels.uncertainty import thread_ratio_error

    margins = rec.get("tie_margins") or thread_ratio_error(rec)  # from the calibration records only: the tie rule's margin
    print(f"tie-rule margins (held-out 2t/1t ratio error on the calibration graphs): {margins}", flush=True)
    before = machine_evidence()
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        paths = build(args.per_family, Path(tmp)) | (build_zoo(Path(tmp)) if args.zoo else {})
        rows = []
        preds = {t: predict(paths, t, pred) for t in THREADS}
        by_t: dict[int, list] = {t: [] for t in THREADS}
        for i in range(max(2, args.passes)):  # both thread counts in each pass, alternating order: a 1-vs-2-thread
            for t in (THREADS if i % 2 == 0 else THREADS[::-1]):  # choice compares times of the same minutes
                by_t[t].append(measure(paths, t, args.runs))
        for t in THREADS:
            p, passes = preds[t], by_t[t]
            for (name, prec), f in paths.items():
                k = (name, prec)
                family = "zoo" if name.startswith("zoo:") else name.rsplit("_", 1)[0]
                rows.append({"model": name, "family": family, "precision": prec, "threads": t,
                             "predicted_s": p[k]["kernel"], "roofline_s": p[k]["roofline"], "kernels": p[k]["kernels"],
                             "measured_s": float(np.mean([m[k]["quiet"] for m in passes])),
                             "median_s": float(np.mean([m[k]["median"] for m in passes])),
                             "pass_a_s": passes[0][k]["quiet"], "pass_b_s": passes[1][k]["quiet"],
                             "passes_s": [m[k]["quiet"] for m in passes], "warnings": p[k]["warnings"],
                             "size_bytes": f.stat().st_size})
    result = summarise(rows, rec, before, machine_evidence(), time.time() - t0, args, margins)
    stem = "estimator_kernels" + (f"_{args.tag}" if args.tag else "")
    write_result_json(RESULTS / f"{stem}.json", result)
    write_text(RESULTS / f"{stem}.md", markdown(result))
    print(markdown(result))


def summarise(rows: list[dict], rec: dict, before: dict, after: dict, elapsed: float, args,  # noqa: ANN001
              margins: dict[str, float] | None = None) -> dict:
    """Errors by precision (kernel-level vs measured quiet time, vs median, and the roofline's), noise, choices."""
    zoo = [r for r in rows if r["family"] == "zoo"]
    rows = [r for r in rows if r["family"] != "zoo"]
    ab = {p: [abs(r["pass_a_s"] / r["pass_b_s"] - 1) for r in rows if r["precision"] == p] for p in PRECISIONS}
    noise = {p: round(100 * float(np.median(v)), 1) for p, v in ab.items()}
    noise_p90 = {p: round(100 * float(np.percentile(v, 90)), 1) for p, v in ab.items()}
    table = {}
    for p in PRECISIONS:
        sel = [r for r in rows if r["precision"] == p]
        table[p] = {"kernel_level": errors(sel, "predicted_s", "measured_s"),
                    "kernel_level_vs_median": errors(sel, "predicted_s", "median_s"),
                    "roofline": errors(sel, "roofline_s", "measured_s"), "run_to_run_noise_pct": noise[p],
                    "run_to_run_noise_p90_pct": noise_p90[p],
                    "by_threads": {t: errors([r for r in sel if r["threads"] == t], "predicted_s", "measured_s") for t in THREADS}}
    fams = sorted({r["family"] for r in rows})
    by_family = {f: errors([r for r in rows if r["family"] == f], "predicted_s", "measured_s") for f in fams}
    choices = choice_rows(rows, margins)
    return {"command": f"nice -n 5 .venv/bin/python benchmarks/estimator_kernels.py --per-family {args.per_family} --runs {args.runs}"
                       f" --passes {args.passes}"
                       + (" --zoo" if args.zoo else "") + (f" --tag {args.tag}" if args.tag else ""),
            "models": len({r['model'] for r in rows}), "families": fams, "table": table, "by_family": by_family,
            "choices": choices, "choice_summary": choice_summary(choices), "tie_margins": margins, "thread_bias": thread_bias(rows), "elapsed_s": round(elapsed, 1),
            "calibration": {k: rec[k] for k in ("isa", "date", "elapsed_s", "budget_s", "how")} | {
                "configurations": len(rec["configs"]), "kernel_samples": len(rec["kernels"]), "cpu": rec["evidence"].get("cpu"),
                "load_average": rec["evidence"].get("load_average")},
            "zoo": [{k: r[k] for k in ("model", "precision", "threads", "predicted_s", "roofline_s", "measured_s", "median_s")}
                    for r in zoo],
            "evidence_before": before, "evidence_after": after, "rows": rows}


def markdown(r: dict) -> str:
    """The result as a short Markdown report."""
    ev = r["evidence_after"]
    lines = [f"# Kernel-level latency predictor on {r['models']} unseen networks ({len(r['families'])} families)", "",
             f"`{r['command']}` - {ev['cpu']} ({', '.join(ev['cpu_flags'])}), onnxruntime {ev['versions'].get('onnxruntime')}, "
             f"load average before {r['evidence_before'].get('load_average')}, after {ev.get('load_average')} on "
             f"{ev['logical_cpus']} logical CPUs (shared with other jobs: figures are noisy). Calibration: "
             f"{r['calibration']['configurations']} sampled graphs, {r['calibration']['kernel_samples']} kernel samples, "
             f"{r['calibration']['elapsed_s']} s, {r['calibration']['date']}, load {r['calibration']['load_average']}.", "",
             "| precision | estimator | vs | median abs err | within 10 % | Spearman | max err | run-to-run noise (median, p90 of |A/B - 1|) |",
             "|---|---|---|---|---|---|---|---|"]
    for p, t in r["table"].items():
        for label, key, ref in (("kernel-level", "kernel_level", "quiet"), ("kernel-level", "kernel_level_vs_median", "median"),
                                ("roofline (old)", "roofline", "quiet")):
            e = t[key]
            lines.append(f"| {p} | {label} | {ref} | {e['median_abs_err_pct']} % | {e['within_10pct']} % | {e['spearman']} | "
                         f"{e['max_abs_err_pct']} % | {t['run_to_run_noise_pct']} %, {t['run_to_run_noise_p90_pct']} % |")
    lines += ["", "| precision | threads | n | median abs err | within 10 % | Spearman |", "|---|---|---|---|---|---|"]
    lines += [f"| {p} | {th} | {e['n']} | {e['median_abs_err_pct']} % | {e['within_10pct']} % | {e['spearman']} |"
              for p, t in r["table"].items() for th, e in t["by_threads"].items()]
    lines += ["", "| family | n | median abs err | within 10 % | Spearman |", "|---|---|---|---|---|"]
    lines += [f"| {f} | {e['n']} | {e['median_abs_err_pct']} % | {e['within_10pct']} % | {e['spearman']} |" for f, e in r["by_family"].items()]
    lines += choice_markdown(r["choices"], r["choice_summary"])
    if r.get("tie_margins"):
        lines += ["", "Tie-rule margins (the kernel predictor's held-out median error on the 2-thread / 1-thread call ratio of "
                  "the calibration graphs, edgemap/devices/kernels/uncertainty.py): "
                  + ", ".join(f"{p} {100 * v:.1f} %" for p, v in r["tie_margins"].items())]
    lines += ["", "Per thread count (signed median error; 2-thread / 1-thread time, median over networks):", "",
              "| precision | signed err 1t | signed err 2t | 2t/1t measured | 2t/1t predicted | 2t faster: measured | predicted |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {p} | {b['signed_median_err_pct'][1]} % | {b['signed_median_err_pct'][2]} % | {b['ratio_2t_1t_measured']} | "
              f"{b['ratio_2t_1t_predicted']} | {b['share_2t_faster_measured']} | {b['share_2t_faster_predicted']} |"
              for p, b in r["thread_bias"].items()]
    if r["zoo"]:
        lines += ["", "Zoo models exported by PyTorch (not from the families above; the old roofline was fitted on three of them):", "",
                  "| model | precision | threads | measured ms | kernel-level ms | error | roofline ms | error |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {z['model']} | {z['precision']} | {z['threads']} | {z['measured_s'] * 1e3:.3f} | {z['predicted_s'] * 1e3:.3f} | "
                  f"{100 * (z['predicted_s'] / z['measured_s'] - 1):+.1f} % | {z['roofline_s'] * 1e3:.3f} | "
                  f"{100 * (z['roofline_s'] / z['measured_s'] - 1):+.1f} % |" for z in r["zoo"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
