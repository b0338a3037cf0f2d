"""Validation of the OpenVINO / LiteRT whole-call latency predictors (edgemap/devices/kernels/backends.py)
on networks they were never fitted on: shared by estimator_openvino.py and estimator_litert.py.

The predictor is the one `edgemap estimate --backend B` uses: fitted on the records that
`edgemap devices calibrate-backend B` wrote beside the host profile (sampled one-to-four-node graphs).
Validation models: `--per-family` networks from each of the 10 families of estimator_families.py, FP32
and static QDQ INT8 as ONNX, made into what the runtime runs exactly as the calibration made its graphs
(edgemap/commands/backend_files.py: OpenVINO reads the ONNX files; LiteRT gets litert-torch .tflite files,
INT8 by ai-edge-quantizer). Converted files are cached in --work (conversion is slow and not timed), so
a re-run only measures. Each file is timed through edgemap's session for the backend, all models
interleaved in bursts, in two passes (A and B: their difference is the run-to-run noise), 1 and 2 threads.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
RESULTS = Path(__file__).resolve().parent / "results"
THREADS = (1, 2)
PRECISIONS = ("fp32", "int8")
BURST = 10


def build(backend: str, per_family: int, work: Path) -> dict[tuple[str, str], tuple[Path, Path]]:
    """(network, precision) -> (ONNX file the estimate reads, file the runtime runs); cached in `work`."""
    from edgemap.commands.backend_files import runtime_file
    from edgemap.devices.kernels.backend_campaign import onnx_pair
    from estimator_families import generate

    work.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (model, _) in generate(per_family).items():
        pair = {p: work / f"{name}_{p}.onnx" for p in PRECISIONS}
        if not all(p.is_file() for p in pair.values()):
            pair = onnx_pair(model, work, name)
        for prec in PRECISIONS:
            run = work / f"{name}_{prec}.tflite" if backend == "litert" else pair[prec]
            if not run.is_file():
                try:
                    run = runtime_file(backend, pair, prec, work)
                except Exception as exc:  # noqa: BLE001 - a network the converter refuses is reported, not fatal
                    print(f"skipped {name} {prec}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", flush=True)
                    continue
            out[(name, prec)] = (pair[prec], run)
    return out


def measure(backend: str, files: dict, threads: int, runs: int) -> dict:
    """Quiet time (seconds) per model of `runs` calls, all models' sessions open and interleaved in bursts."""
    from edgemap.devices.kernels.profiling import quiet_time
    from edgemap.runtime.registry import load_session

    sessions = {k: load_session(backend, run, threads) for k, (_, run) in files.items()}
    xs = {k: np.random.default_rng(0).standard_normal(tuple(1 if d is None else d for d in s.inputs()[0].shape)).astype(np.float32)
          for k, s in sessions.items()}
    samples: dict = {k: [] for k in files}
    for _ in range(max(1, runs // BURST)):
        for k, s in sessions.items():
            s.run(xs[k], check_finite=False)  # pays for the previous session's spinning threads
            for _ in range(BURST):
                t0 = time.perf_counter()
                s.run(xs[k], check_finite=False)
                samples[k].append(time.perf_counter() - t0)
    for s in sessions.values():
        s.close()
    return {k: quiet_time(v) for k, v in samples.items()}


def predict(files: dict, threads: int, ort_pred, bpred) -> dict:  # noqa: ANN001 - KernelPredictor, BackendPredictor
    """Predicted seconds per model (None where the predictor has no line for its precision)."""
    from edgemap.devices.kernels.backends import graph_features, kernel_items
    from edgemap.devices.kernels.predict import predict_model

    out = {}
    for (name, prec), (onnx_file, _) in files.items():
        t = bpred.threads_for(prec, threads)
        out[(name, prec)] = None if t != threads else bpred.predict(graph_features(kernel_items(predict_model(onnx_file, ort_pred, t).rows)), prec, t)
    return out


def summarise(rows: list[dict]) -> dict:
    """Per precision and thread count: errors (estimator_kernels.errors) and the A/B noise."""
    from estimator_kernels import errors

    table = {}
    for p in PRECISIONS:
        for t in THREADS:
            sel = [r for r in rows if r["precision"] == p and r["threads"] == t and r["predicted_s"] is not None]
            if sel:
                noise = [abs(r["pass_a_s"] / r["pass_b_s"] - 1) for r in sel]
                table[f"{p}/{t}"] = errors(sel, "predicted_s", "measured_s") | {
                    "noise_median_pct": round(100 * float(np.median(noise)), 1), "noise_p90_pct": round(100 * float(np.percentile(noise, 90)), 1)}
        sel = [r for r in rows if r["precision"] == p and r["predicted_s"] is not None]
        if sel:
            table[f"{p}/all"] = errors(sel, "predicted_s", "measured_s")
    return table


def markdown(r: dict) -> str:
    """The result as a short Markdown report."""
    ev, cal = r["evidence_after"], r["calibration"]
    lines = [f"# {r['backend']} whole-call latency predictor on {r['models']} unseen networks ({r['families']} families)", "",
             f"`{r['command']}` - {ev['cpu']} ({', '.join(ev['cpu_flags'])}), {r['backend']} {r['version']}, onnxruntime "
             f"{ev['versions'].get('onnxruntime')}, load average before {r['evidence_before'].get('load_average')}, after "
             f"{ev.get('load_average')} on {ev['logical_cpus']} logical CPUs (shared with other jobs: figures are noisy); "
             f"{r['elapsed_s']} s. Kernels: {r['isa']}. Predictor: `edgemap estimate --backend {r['backend']}`, fitted on {cal['graphs']} sampled graphs "
             f"measured by `{cal['how']}` ({cal['date']}, {cal['elapsed_s']} s, load {cal['load_average']}).", "",
             "| precision / threads | n | median abs err | within 10 % | Spearman | max err | run-to-run noise (median, p90 of |A/B - 1|) |",
             "|---|---|---|---|---|---|---|"]
    for k, e in r["table"].items():
        noise = f"{e['noise_median_pct']} %, {e['noise_p90_pct']} %" if "noise_median_pct" in e else "-"
        lines.append(f"| {k} | {e['n']} | {e['median_abs_err_pct']} % | {e['within_10pct']} % | {e['spearman']} | "
                     f"{e['max_abs_err_pct']} % | {noise} |")
    if r["skipped"]:
        lines += ["", f"Not converted (left out): {', '.join(r['skipped'])}"]
    return "\n".join(lines) + "\n"


def run(backend: str, default_work: str) -> None:
    """Parse the arguments, build, predict, measure twice, write results/estimator_BACKEND[_TAG].{json,md}."""
    import onnxruntime as ort

    from compress_common import write_result_json  # the JSON, and the same run in the results store
    from edgemap.core.atomic import write_text
    from edgemap.core.evidence import machine_evidence
    from edgemap.devices.kernels.backends import backend_isa_tag, backends_path, load_backend_predictor
    from edgemap.devices.kernels.device import records_path
    from edgemap.devices.kernels.store import load_predictor
    from estimator_families import generate

    ap = argparse.ArgumentParser(description=f"Validate the {backend} latency predictor on unseen networks")
    ap.add_argument("--per-family", type=int, default=4, help="networks per family (10 families)")
    ap.add_argument("--runs", type=int, default=40, help="timed calls per model, pass and thread count")
    ap.add_argument("--work", default=default_work, help="cache of the converted validation files (outside the repo)")
    ap.add_argument("--build-only", action="store_true", help="convert (untimed) and stop: run this outside the timing lock")
    ap.add_argument("--tag", default="", help="suffix of the result files")
    args = ap.parse_args()
    ort.set_default_logger_severity(3)
    files = build(backend, args.per_family, Path(args.work))
    if args.build_only:
        return
    path = records_path("host")
    ort_loaded = load_predictor(path) if path else None
    tag = backend_isa_tag(backend)
    b_loaded = load_backend_predictor(backends_path(path.with_name("host.yaml")), backend, tag) if path else None
    if ort_loaded is None or b_loaded is None:
        sys.exit(f"no {backend} (or ONNX Runtime kernel) records for this CPU: run edgemap devices calibrate-backend {backend}")
    (ort_pred, _), (bpred, brec) = ort_loaded, b_loaded
    before, t0, rows = machine_evidence(), time.time(), []
    for t in THREADS:
        pred = predict(files, t, ort_pred, bpred)
        a, b = measure(backend, files, t, args.runs), measure(backend, files, t, args.runs)
        rows += [{"model": n, "family": n.rsplit("_", 1)[0], "precision": p, "threads": t, "predicted_s": pred[(n, p)],
                  "measured_s": (a[(n, p)] + b[(n, p)]) / 2, "pass_a_s": a[(n, p)], "pass_b_s": b[(n, p)]} for (n, p) in files]
    after = machine_evidence()
    names = sorted({n for n, _ in files})
    expected = {(n, p) for n in generate(args.per_family) for p in PRECISIONS}
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") if backend == "openvino" else None
    cmd = ((f"ONEDNN_MAX_CPU_ISA={cap} " if cap else "") + f"nice -n 5 .venv/bin/python benchmarks/estimator_{backend}.py --per-family {args.per_family} --runs {args.runs}"
           + (f" --tag {args.tag}" if args.tag else ""))
    result = {"backend": backend, "command": cmd, "isa": tag, "models": len(names), "families": len({n.rsplit('_', 1)[0] for n in names}),
              "version": after["versions"].get("ai-edge-litert" if backend == "litert" else backend, "?"),
              "table": summarise(rows), "skipped": sorted(f"{n} {p}" for n, p in expected - set(files)),
              "calibration": {"graphs": len(brec["configs"]), "how": brec["how"], "date": brec["date"], "elapsed_s": brec["elapsed_s"],
                              "load_average": brec["evidence"].get("load_average"), "refused": len(brec["refused"])},
              "elapsed_s": round(time.time() - t0, 1), "evidence_before": before, "evidence_after": after, "rows": rows}
    stem = f"estimator_{backend}" + (f"_{args.tag}" if args.tag else "")
    write_result_json(RESULTS / f"{stem}.json", result)
    write_text(RESULTS / f"{stem}.md", markdown(result))
    print(markdown(result))
