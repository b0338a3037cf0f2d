"""Which held-out error should bound a tie between two estimates? The kernel predictor's two-fold held-out error
(fit on half the sampled configurations, predict the other half's whole calls) on the ratio each kind of comparison
the search makes: the same graph at 2 vs 1 thread (the band the search uses, search/estimate_ties.py), INT8 vs FP32
of the same configuration at one thread count, and both at once; and on a single whole call. From the calibration
records alone (no timing). A band from the ratio it compares would be the principled one; it is kept only if it is
not wider than the thread-ratio band, because the sampled graphs' errors overstate the whole networks' (the
networks of estimator_kernels.py: median whole-call error about 5 %).

    .venv/bin/python benchmarks/estimator_tie_bands.py [--validation estimator_kernels_s3.json ...]
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def held_out_calls(rec: dict) -> tuple[dict, dict]:
    """(cfg, precision, threads) -> predicted and measured call seconds, predicted by the fold not fitted on it."""
    from edgemap.devices.kernels.campaign import as_samples
    from edgemap.devices.kernels.predictor import KernelPredictor
    from edgemap.devices.kernels.store import capped
    from edgemap.devices.kernels.uncertainty import _per_call

    samples = as_samples(rec["kernels"], rec["features"])
    calls = _per_call(samples, rec["calls"])
    pred_s, meas_s = {}, {}
    for fold in (0, 1):
        pred = KernelPredictor(capped([s for s in samples if s["cfg"] % 2 != fold]), [c for c in rec["calls"] if c["cfg"] % 2 != fold])
        for (cfg, prec, t), (ks, call) in calls.items():
            if cfg % 2 == fold:
                times = pred.kernel_times([(s["key"], s["prec"], s["f"]) for s in ks], t)
                pred_s[(cfg, prec, t)] = pred.call_time(sum(v for v, _ in times), len(ks), t, prec)
                meas_s[(cfg, prec, t)] = call["call_s"]
    return pred_s, meas_s


def ratio_error(p: dict, m: dict, a: tuple[str, int], b: tuple[str, int]) -> dict:
    """Median and p75 |predicted / measured - 1| of the (precision, threads) a / b call ratio over configurations."""
    e = [abs((p[(c, *a)] / p[(c, *b)]) / (m[(c, *a)] / m[(c, *b)]) - 1) for c in sorted({k[0] for k in p})
         if (c, *a) in p and (c, *b) in p]
    return {"median_pct": round(100 * float(np.median(e)), 1), "p75_pct": round(100 * float(np.percentile(e, 75)), 1), "n": len(e)}


def validation_rows(path: Path) -> dict:
    """The same ratios on the whole networks of a stored estimator_kernels run (for comparison, never for the band)."""
    rows = json.loads(path.read_text())["rows"]
    p = {(r["model"], r["precision"], r["threads"]): r["predicted_s"] for r in rows if r["family"] != "zoo"}
    m = {(r["model"], r["precision"], r["threads"]): r["measured_s"] for r in rows if r["family"] != "zoo"}
    return {f"{path.name}: {k}": ratio_error(p, m, a, b) for k, a, b in (
        ("2t / 1t, FP32", ("fp32", 2), ("fp32", 1)), ("2t / 1t, INT8", ("int8", 2), ("int8", 1)),
        ("INT8 / FP32, 1 thread", ("int8", 1), ("fp32", 1)), ("INT8 / FP32, 2 threads", ("int8", 2), ("fp32", 2)))}


def main() -> None:
    import argparse

    from edgemap.core.atomic import write_text
    from edgemap.devices.kernels.device import records_path
    from edgemap.devices.kernels.store import isa_tag, read_records

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--validation", nargs="*", default=[], help="stored results/estimator_kernels*.json to compare with")
    args = ap.parse_args()
    rec = read_records(records_path("host"))[isa_tag()]
    p, m = held_out_calls(rec)
    rows = {"2t / 1t, FP32 (the search's FP32 band)": ratio_error(p, m, ("fp32", 2), ("fp32", 1)),
            "2t / 1t, INT8 (the search's INT8 band)": ratio_error(p, m, ("int8", 2), ("int8", 1)),
            "INT8 / FP32, 1 thread": ratio_error(p, m, ("int8", 1), ("fp32", 1)),
            "INT8 / FP32, 2 threads": ratio_error(p, m, ("int8", 2), ("fp32", 2)),
            "INT8 2t / FP32 1t": ratio_error(p, m, ("int8", 2), ("fp32", 1))}
    for prec in ("fp32", "int8"):
        e = [abs(p[k] / m[k] - 1) for k in p if k[1] == prec]
        rows[f"one whole call, {prec.upper()}"] = {"median_pct": round(100 * float(np.median(e)), 1),
                                                   "p75_pct": round(100 * float(np.percentile(e, 75)), 1), "n": len(e)}
    for v in args.validation:
        rows |= validation_rows(RESULTS / v)
    cmd = ".venv/bin/python benchmarks/estimator_tie_bands.py" + "".join(f" --validation {v}" for v in args.validation[:1]) \
        + "".join(f" {v}" for v in args.validation[1:])
    lines = ["# Held-out error of the kernel predictor on each kind of comparison (calibration records only)", "",
             f"`{cmd}` - record {rec['isa']} ({len(rec['configs'])} sampled configurations, {rec['date']}, calibration load "
             f"{rec['evidence'].get('load_average')}); no timing.", "",
             "| comparison | median abs error | p75 | configurations (networks) |", "|---|---|---|---|"]
    lines += [f"| {k} | {v['median_pct']} % | {v['p75_pct']} % | {v['n']} |" for k, v in rows.items()]
    write_text(RESULTS / "estimator_tie_bands.md", "\n".join(lines) + "\n")
    write_text(RESULTS / "estimator_tie_bands.json", json.dumps({"command": cmd, "rows": rows}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
