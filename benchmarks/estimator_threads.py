"""Where does the kernel-level predictor's 1-vs-2-thread error come from?

For one network per family (estimator_families.py, FP32 and INT8), at 1 and 2 threads: the
predicted kernel sum against the profiled kernel sum (the kernel regressors), and the call model
applied to the *profiled* kernel sum against the measured whole call (the call model alone), and
the whole prediction against the call. A per-thread bias of the call model shows in the second
column; one of the kernel regressors in the first.

    nice -n 5 .venv/bin/python benchmarks/estimator_threads.py [--runs 40] [--tag NAME]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
RESULTS = Path(__file__).resolve().parent / "results"
THREADS = (1, 2)


def rows_for(runs: int, pred) -> list[dict]:  # noqa: ANN001 - KernelPredictor
    """Per network, precision and thread count: the three relative errors."""
    import onnx

    from edgemap.devices.kernels.predict import predict_model
    from edgemap.devices.kernels.profiling import profile_model
    from edgemap.devices.kernels.sampler import quantize
    from estimator_families import generate

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, _) in generate(1).items():
            fp32, int8 = Path(tmp) / f"{name}_fp32.onnx", Path(tmp) / f"{name}_int8.onnx"
            onnx.save(model, str(fp32))
            int8.write_bytes(quantize(model))
            for prec, p in (("fp32", fp32), ("int8", int8)):
                for t in THREADS:
                    prof, kl = profile_model(p, t, runs=runs), predict_model(p, pred, t)
                    psum = float(sum(prof.kernel_s))
                    out.append({"model": name, "precision": prec, "threads": t, "kernels": len(kl.rows),
                                "kernel_sum_err": kl.kernel_sum_s / psum - 1, "whole_err": kl.total_s / prof.call_s - 1,
                                "call_model_err": pred.call_time(psum, len(prof.kernel_s), t, prec) / prof.call_s - 1})
    return out


def summary(rows: list[dict]) -> dict:
    """Median signed errors (%) per precision and thread count."""
    out = {}
    for prec in ("fp32", "int8"):
        for t in THREADS:
            sel = [r for r in rows if r["precision"] == prec and r["threads"] == t]
            out[f"{prec}/{t}t"] = {k: round(100 * float(np.median([r[k] for r in sel])), 1)
                                   for k in ("kernel_sum_err", "call_model_err", "whole_err")} | {"n": len(sel)}
    return out


def main() -> None:
    """Profile, predict, write results/estimator_threads.{json,md}."""
    import onnxruntime as ort

    from edgemap.core.atomic import write_text
    from compress_common import write_result_json  # the JSON is an export of the results store
    from edgemap.core.evidence import machine_evidence
    from edgemap.devices.kernels.device import records_path
    from edgemap.devices.kernels.store import load_predictor

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40, help="profiled and timed calls per model and thread count")
    ap.add_argument("--tag", default="", help="suffix of the result files")
    args = ap.parse_args()
    ort.set_default_logger_severity(3)
    loaded = load_predictor(records_path("host")) if records_path("host") else None
    if loaded is None:
        sys.exit("no kernel records for this CPU: run edgemap devices calibrate-host first")
    pred, rec = loaded
    before = machine_evidence()
    rows = rows_for(args.runs, pred)
    after = machine_evidence()
    s = summary(rows)
    cmd = f"nice -n 5 .venv/bin/python benchmarks/estimator_threads.py --runs {args.runs}" + (f" --tag {args.tag}" if args.tag else "")
    md = [f"# Kernel-level predictor: the per-thread error split into kernels and call model", "",
          f"`{cmd}` - {after['cpu']} ({', '.join(after['cpu_flags'])}), onnxruntime {after['versions'].get('onnxruntime')}, "
          f"load average before {before['load_average']}, after {after['load_average']} on {after['logical_cpus']} logical CPUs "
          f"(shared: noisy). Calibration of the kernel records at load {rec['evidence'].get('load_average')}, {rec['date']}.", "",
          "Median signed error over one network per family (10):", "",
          "| precision/threads | predicted kernel sum vs profiled sum | call model on the profiled sum vs call | whole prediction vs call |",
          "|---|---|---|---|"]
    md += [f"| {k} | {v['kernel_sum_err']:+.1f} % | {v['call_model_err']:+.1f} % | {v['whole_err']:+.1f} % |" for k, v in s.items()]
    stem = "estimator_threads" + (f"_{args.tag}" if args.tag else "")
    write_result_json(RESULTS / f"{stem}.json", {"command": cmd, "summary": s, "rows": rows, "evidence_before": before, "evidence_after": after})
    write_text(RESULTS / f"{stem}.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
