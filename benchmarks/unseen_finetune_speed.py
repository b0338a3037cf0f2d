"""Fine-tuning speed of a model converted back from ONNX against the same architecture written in torch.

    nice -n 5 .venv/bin/python benchmarks/unseen_finetune_speed.py     # ~3 min; needs benchmarks/unseen_make.py first

For each unseen model (out/unseen/{graynet,dwhsnet}.onnx, built by unseen_make.py): the torch module
(benchmarks/unseen/nets.py, with the trained weights where saved) and edgemap's ONNX -> torch
conversion (edgemap.convert.onnx_to_torch) each train for STEPS steps of batch BATCH with AdamW, in
alternating rounds in this one process, one thread; images/s per round, median and range. When the
converted model is > 1.5x slower per image, the ops that differ are listed: what the exporter and the
converter decomposed (from the ONNX op counts and the converted graph's nodes).
Result: benchmarks/results/unseen_finetune_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# ---- settings ----------------------------------------------------------------------------------
BATCH = 64
STEPS = 6        # timed steps per round (after 2 warm-up steps)
ROUNDS = 5       # alternating rounds: torch, converted, converted, torch, ...
THREADS = 1
# -------------------------------------------------------------------------------------------------


def load_native(name: str, out: Path):  # noqa: ANN201 - nn.Module
    """The torch module with its trained weights (DwHsNet's are saved; GrayNet's live only in its ONNX file)."""
    from benchmarks.unseen import nets

    model = getattr(nets, name)()
    weights = out / f"{name}.safetensors"
    if weights.is_file():
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(weights)))
    return model


def train_speed(model, shape: tuple[int, ...], steps: int) -> float:  # noqa: ANN001
    """Images per second over `steps` AdamW steps (forward, backward, update) after 2 warm-up steps."""
    import torch
    import torch.nn.functional as F

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(BATCH, *shape, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (BATCH,), generator=torch.Generator().manual_seed(1))
    for i in range(steps + 2):
        if i == 2:
            t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return BATCH * steps / (time.perf_counter() - t0)


def graph_ops(module) -> dict:  # noqa: ANN001
    """What the converted module computes: call_module layer types and call_function/method names."""
    counts: Counter = Counter()
    mods = dict(module.named_modules())
    for node in module.graph.nodes:
        if node.op == "call_module":
            counts[type(mods[node.target]).__name__] += 1
        elif node.op in ("call_function", "call_method"):
            counts[getattr(node.target, "__name__", str(node.target))] += 1
    return dict(counts.most_common())


def native_layers(module) -> dict:  # noqa: ANN001
    """Leaf layer types of the torch module."""
    return dict(Counter(type(m).__name__ for m in module.modules() if not list(m.children())).most_common())


def measure(name: str, out: Path) -> dict:
    """Alternating rounds of the native and the converted model; the ratio and what differs."""
    import onnx
    import torch

    from edgemap.convert.onnx_to_torch import onnx_to_torch

    native = load_native(name, out)
    shape = native.input_shape
    converted = onnx_to_torch(out / f"{name}.onnx")
    with torch.no_grad():
        x = torch.randn(4, *shape)
        same = float((native.eval()(x) - converted.eval()(x)).abs().max())
    speeds: dict[str, list[float]] = {"torch": [], "converted": []}
    for r in range(ROUNDS):
        for which in (("torch", "converted") if r % 2 == 0 else ("converted", "torch")):
            speeds[which].append(train_speed(native if which == "torch" else converted, shape, STEPS))
    med = {k: float(np.median(v)) for k, v in speeds.items()}
    ops = Counter(n.op_type for n in onnx.load(str(out / f"{name}.onnx")).graph.node)
    return {"model": name, "input_shape": list(shape), "max_abs_logit_diff_eval": same,
            "trained_weights": (out / f"{name}.safetensors").is_file(),
            "images_per_s": {k: {"median": round(med[k], 1), "range": [round(min(v), 1), round(max(v), 1)],
                                 "rounds": [round(s, 1) for s in v]} for k, v in speeds.items()},
            "slowdown_converted": round(med["torch"] / med["converted"], 3),
            "onnx_ops": dict(ops.most_common()), "converted_graph": graph_ops(converted),
            "torch_layers": native_layers(native),
            "params": {"torch": sum(p.numel() for p in native.parameters()),
                       "converted": sum(p.numel() for p in converted.parameters())}}


def markdown(rows: list[dict], ev: dict, command: str) -> str:
    """The result table with its evidence."""
    lines = [f"# Fine-tuning speed: converted from ONNX vs written in torch\n", f"`{command}`\n",
             f"CPU {ev['cpu']} ({', '.join(ev['cpu_flags'])}), {THREADS} thread, batch {BATCH}, {STEPS} AdamW steps per "
             f"round, {ROUNDS} alternating rounds, load average {ev.get('load_average')} (host shared by six "
             f"sessions: absolute figures are noisy, the ratio less so).\n",
             "| model | torch img/s (range) | converted img/s (range) | converted slower by | converted layers | "
             "torch layers | max logit diff (eval) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        t, c = r["images_per_s"]["torch"], r["images_per_s"]["converted"]
        layers = ", ".join(f"{k} {v}" for k, v in list(r["converted_graph"].items())[:6])
        native = ", ".join(f"{k} {v}" for k, v in list(r["torch_layers"].items())[:6])
        diff = f"{r['max_abs_logit_diff_eval']:.2g}" + ("" if r["trained_weights"] else " (torch weights fresh: speed only)")
        lines.append(f"| {r['model']} | {t['median']} ({t['range'][0]}-{t['range'][1]}) | {c['median']} "
                     f"({c['range'][0]}-{c['range'][1]}) | x{r['slowdown_converted']:.2f} | {layers} | {native} | {diff} |")
    lines.append("\nslower by = torch images/s / converted images/s (median over rounds); below 1: the converted model "
                 "is faster. The exporter folds BatchNorm into the convolutions, so a converted BN model trains "
                 "without BatchNorm (fewer layers per step, other training dynamics).")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Measure both unseen models and write the result files."""
    import torch

    from compress_common import write_result_json  # the JSON, and the same run in the results store
    from edgemap.core.evidence import machine_evidence

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "unseen")
    ap.add_argument("--models", default="graynet,dwhsnet")
    args = ap.parse_args()
    torch.set_num_threads(THREADS)
    rows = [measure(name, args.out) for name in args.models.split(",")]
    ev = machine_evidence(THREADS)
    command = "nice -n 5 .venv/bin/python benchmarks/unseen_finetune_speed.py"
    results = ROOT / "benchmarks" / "results"
    write_result_json(results / "unseen_finetune_speed.json", {"command": command, "rows": rows, "batch": BATCH,
                                                         "steps": STEPS, "rounds": ROUNDS, "evidence": ev})
    (results / "unseen_finetune_speed.md").write_text(markdown(rows, ev, command))
    print(markdown(rows, ev, command))


if __name__ == "__main__":
    main()
