"""Where static INT8 gains: ONNX Runtime's per-conv kernel time, FP32 against INT8, from its own profiler.

    .venv/bin/python benchmarks/compress_int8.py        # writes the models into runs/compress_bench/int8/
    .venv/bin/python benchmarks/int8_conv_profile.py    # -> benchmarks/results/int8_conv_profile.{json,md}

Both graphs are profiled after ONNX Runtime's optimisations (FP32 convs become NCHWc kernels, INT8 ones
QLinearConv in NHWC), 1 thread, batch 1. The convs are paired in execution order; in the INT8 model with
float first/last layers the first conv stays a float Conv. The profiler adds its own overhead to every node,
so the absolute times are larger than in compress_int8.md; the per-conv ratios are what this measures.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from compress_common import RESULTS, write_results

CONV_OPS = ("Conv", "QLinearConv")


def profile(path: Path, runs: int, threads: int = 1) -> tuple[list[dict], float]:
    """Median kernel time (us) of every node over `runs` batch-1 calls, in execution order; and the run's median total."""
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.enable_profiling, opts.log_severity_level = True, 3
    opts.profile_file_prefix = str(Path("/tmp") / f"edgemap_profile_{path.stem}")
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    for _ in range(runs):
        sess.run(None, {sess.get_inputs()[0].name: x})
    trace = Path(sess.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()
    times: dict[str, list[float]] = {}
    ops: dict[str, str] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            name = e["name"][: -len("_kernel_time")]
            times.setdefault(name, []).append(e["dur"])
            ops[name] = e["args"].get("op_name", "")
    totals = [e["dur"] for e in events if e.get("cat") == "Session" and e["name"] == "model_run"]
    nodes = [{"node": n, "op": ops[n], "us": statistics.median(t)} for n, t in times.items()]
    return nodes, statistics.median(totals)


def main() -> None:
    from edgemap.core.evidence import machine_evidence

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    work = Path("runs/compress_bench/int8")
    ap.add_argument("--fp32", type=Path, default=work / "fp32.onnx")
    ap.add_argument("--int8", type=Path, default=work / "int8_minmax+float_first_last.onnx")
    ap.add_argument("--runs", type=int, default=500)
    args = ap.parse_args()
    for p in (args.fp32, args.int8):
        if not p.is_file():
            raise SystemExit(f"{p}: not found; run benchmarks/compress_int8.py first (it writes the models)")
    fp32, fp32_total = profile(args.fp32, args.runs)
    int8, int8_total = profile(args.int8, args.runs)
    convs = [[n for n in nodes if n["op"] in CONV_OPS] for nodes in (fp32, int8)]
    if len(convs[0]) != len(convs[1]):
        raise SystemExit(f"the models have {len(convs[0])} and {len(convs[1])} convs; they cannot be paired")
    pairs = [{"fp32_node": a["node"], "int8_node": b["node"], "int8_op": b["op"], "fp32_us": a["us"], "int8_us": b["us"],
              "speedup": round(a["us"] / b["us"], 2)} for a, b in zip(*convs)]
    rest = {k: round(sum(n["us"] for n in nodes if n["op"] not in CONV_OPS), 1) for k, nodes in (("fp32", fp32), ("int8", int8))}
    record = {"command": f".venv/bin/python benchmarks/int8_conv_profile.py --runs {args.runs}", "threads": 1,
              "models": {"fp32": str(args.fp32), "int8": str(args.int8)}, "convs": pairs, "other_nodes_us": rest,
              "model_run_us_median": {"fp32": fp32_total, "int8": int8_total},
              "nodes": {"fp32": fp32, "int8": int8}, "evidence": machine_evidence(1)}
    ev = record["evidence"]
    lines = ["# Static INT8 per conv: ONNX Runtime kernel time, FP32 vs INT8 (its profiler, 1 thread, batch 1)", "",
             f"`{record['command']}` (models from `benchmarks/compress_int8.py`)", "",
             f"CPU: {ev['cpu']} ({', '.join(ev['cpu_flags'])}); onnxruntime {ev['versions'].get('onnxruntime')}; "
             f"load average at the end {ev.get('load_average')}", "",
             "| # | FP32 node | INT8 node (op) | FP32 us | INT8 us | INT8 speedup |", "|---|---|---|---|---|---|"]
    lines += [f"| {i} | {p['fp32_node']} | {p['int8_node']} ({p['int8_op']}) | {p['fp32_us']:g} | {p['int8_us']:g} | "
              f"x{p['speedup']} |" for i, p in enumerate(pairs)]
    lines += ["", f"Other nodes (pooling, adds, quantize/reorder/transpose, head), summed: FP32 {rest['fp32']} us, "
              f"INT8 {rest['int8']} us. Whole run under the profiler (median): FP32 {fp32_total} us, INT8 {int8_total} us.",
              "The profiler's per-node overhead inflates small nodes; compress_int8.md has the unprofiled latencies."]
    write_results("int8_conv_profile", record, lines)


if __name__ == "__main__":
    main()
