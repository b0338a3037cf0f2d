"""Do pruned channel counts that are not multiples of 8 slow down ONNX Runtime's INT8 kernels?

    .venv/bin/python benchmarks/prune_widths.py
    # -> benchmarks/results/prune_widths.{json,md}

The shipped model is pruned at several ratios (per layer, and global Taylor importance) with and without
round_to=8, exported, statically quantized (QDQ, first/last layer float, calibrated on the shipped sample)
and timed at batch 1 in one interleaved run. Speed only: the pruned weights are not fine-tuned, which does
not change the work the kernels do. The figure decides the search's default for `round_to`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from compress_common import latency_rounds, ort_fn, write_results

# ---- settings --------------------------------------------------------------------------------
THREADS = 1
ROUNDS, RUNS = int(os.environ.get("ROUNDS", 5)), int(os.environ.get("RUNS", 300))
VARIANTS = [  # (name, PruneChannels keyword arguments)
    ("r0.25", {"ratio": 0.25}), ("r0.25_round8", {"ratio": 0.25, "round_to": 8}),
    ("r0.4", {"ratio": 0.4}), ("r0.4_round8", {"ratio": 0.4, "round_to": 8}),
    ("r0.5", {"ratio": 0.5}),
    ("global_taylor0.5", {"ratio": 0.5, "importance": "taylor", "global_pruning": True}),
    ("global_taylor0.5_round8", {"ratio": 0.5, "importance": "taylor", "global_pruning": True, "round_to": 8}),
]
# ------------------------------------------------------------------------------------------------


def main() -> None:
    import torch

    from edgemap.compress.calibration import calibration_array
    from edgemap.compress.prune import PruneChannels, prune_model
    from edgemap.compress.quantize import QuantizeStatic, quantize_static_onnx
    from edgemap.convert.onnx_export import export_onnx
    from edgemap.core.evidence import machine_evidence
    from edgemap.data.sample import load_sample
    from edgemap.models.checkpoint import conv_widths, load_checkpoint, to_float_input
    from edgemap.models.shipped import shipped_checkpoint
    from edgemap.models.stats import count_macs

    torch.set_num_threads(THREADS)
    model, info = load_checkpoint(shipped_checkpoint())
    sample = load_sample()
    batch = (to_float_input(sample.images[:256], info), torch.from_numpy(sample.labels[:256].astype("int64")))
    calib = calibration_array(sample, 256, info.normalization, seed=0)
    work = Path(tempfile.mkdtemp(prefix="prune_widths_"))
    models, fns = {"unpruned": (model, None)}, {}
    for name, kw in VARIANTS:
        models[name] = (prune_model(model, PruneChannels(**kw), info.input_shape, batch), kw)
    record = {"variants": {}}
    for name, (m, kw) in models.items():
        fp32 = export_onnx(m, work / f"{name}.onnx", info.input_shape)
        int8 = work / f"{name}_int8.onnx"
        quantize_static_onnx(fp32, int8, calib, QuantizeStatic(samples=256, float_first_last=True))
        fns[name] = ort_fn(int8, THREADS)
        record["variants"][name] = {"config": kw, "macs": count_macs(m, info.input_shape), "conv_widths": conv_widths(m)}
    lat = latency_rounds(fns, ROUNDS, RUNS)
    for name, row in record["variants"].items():
        row["int8_p50_ms"] = lat["candidates"][name]
        row["ns_per_kmac"] = round(1e6 * lat["candidates"][name]["p50_ms_median"] / (row["macs"] / 1e3), 3)
    record.update(command=".venv/bin/python benchmarks/prune_widths.py", latency=lat, evidence=machine_evidence(THREADS))
    write_results("prune_widths", record, summary(record))


def summary(r: dict) -> list[str]:
    """The markdown table."""
    ev = r["evidence"]
    lines = ["# INT8 latency of pruned widths, with and without round_to=8", "", f"`{r['command']}`", "",
             f"CPU: {ev['cpu']}; ONNX Runtime {ev['versions'].get('onnxruntime')}; threads {ev['threads']}; "
             f"load average {ev['load_average']}; batch 1, interleaved, {ROUNDS} rounds x {RUNS} runs", "",
             "| variant | conv widths | MACs | INT8 p50 ms (median [min-max]) | ns per 1k MACs |", "|---|---|---|---|---|"]
    for name, v in r["variants"].items():
        p = v["int8_p50_ms"]
        lines.append(f"| {name} | {v['conv_widths']} | {v['macs']:,} | {p['p50_ms_median']} [{p['p50_ms_min']}-"
                     f"{p['p50_ms_max']}] | {v['ns_per_kmac']} |")
    return lines


if __name__ == "__main__":
    main()
