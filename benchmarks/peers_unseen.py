"""edgemap's INT8 (and its pruned + fine-tuned INT8) against the INT8 a user would otherwise make, on unseen models.

    nice -n 5 .venv/bin/python benchmarks/peers_unseen.py [--models graynet,dwhsnet,resnet9s] [--prune 0.25]

For each model: FP32 ONNX; edgemap's static INT8 (edgemap.compress.quantize defaults: QDQ, per-channel,
MinMax, uint8 activations); with --prune r: the ONNX model converted to torch, r of its channels pruned,
fine-tuned within a step budget by edgemap.train.budget (AdamW on BN-free models, range-tested rate,
distilled from the unpruned model, stopped once within 1 point on held-out training images), exported
and quantized the same way; and the peers (edgemap.peers: ORT static INT8 with Olive's defaults, NNCF
INT8 on ORT, NNCF INT8 on OpenVINO). All are scored on the whole CIFAR-10 test split (and its 1,000
exact images) and timed by edgemap.runtime.isolated (one fresh process per model, thread count and
round; 1 and 2 threads; median of ROUNDS round medians, range; best thread count per model).
With --map-dir D (the --work folder of benchmarks/unseen_map.py): the map's own choice for each model
(D/<model>/results.json "chosen") and, per pruning ratio, its most accurate INT8 candidate and its fastest trial
within MAX_DROP of FP32 (by the search's latency, any precision or backend) join the candidates,
so the figure is the mapped model against the best peer. --prune '' then skips this script's own pruning.
Needs out/unseen/ from benchmarks/unseen_make.py. Result: benchmarks/results/peers_unseen.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# ---- settings ----------------------------------------------------------------------------------
CIFAR = Path("/work/shared/data/cifar10")
CALIB = 300             # calibration images for every INT8 (NNCF's default subset size)
ROUNDS, RUNS = 5, 200   # isolated timing: rounds x runs per sample
THREADS = (1, 2)
MAX_DROP = 0.5          # the bound for "equal or better accuracy" against the peers
PRUNE_BOUND = 1.0       # fine-tuning stops once the pruned student is within this of its teacher
FT_STEPS, FT_BATCH = 300, 64
VAL = slice(45000, 46000)  # held-out training images for early stopping (never the test split)
# -------------------------------------------------------------------------------------------------


def model_setup(name: str, out: Path) -> dict:
    """FP32 file, preprocessing, training subset (uint8), labels in the model's order."""
    from benchmarks.unseen_make import DW_TRAIN, GRAY_PREPROCESS, GRAY_TRAIN, model_order
    from edgemap.data.cifar10 import load_cifar10
    from edgemap.data.classes import align_to_model
    from edgemap.data.preprocess import parse_preprocess

    train, test = load_cifar10("train", CIFAR), load_cifar10("test", CIFAR)
    if name == "graynet":
        order = model_order()
        train, test = align_to_model(train, order), align_to_model(test, order)
        return {"onnx": out / "graynet.onnx", "spec": parse_preprocess(GRAY_PREPROCESS), "shape": (1, 32, 32),
                "train": train.subset(slice(0, GRAY_TRAIN)), "val": train.subset(VAL), "test": test}
    if name == "dwhsnet":
        return {"onnx": out / "dwhsnet.onnx", "spec": parse_preprocess("cifar10"), "shape": (3, 32, 32),
                "train": train.subset(slice(0, DW_TRAIN)), "val": train.subset(VAL), "test": test}
    if name == "resnet9s":
        from edgemap.models.sources import load_user_model
        from edgemap.models.shipped import shipped_checkpoint

        path = out / "resnet9s.onnx"
        if not path.is_file():
            from edgemap.convert.onnx_export import export_onnx
            from edgemap.models.checkpoint import load_checkpoint

            export_onnx(load_checkpoint(shipped_checkpoint())[0], path)
        return {"onnx": path, "spec": parse_preprocess("cifar10"), "shape": (3, 32, 32),
                "train": train.subset(slice(0, 10000)), "val": train.subset(VAL), "test": test}
    raise SystemExit(f"unknown model {name!r}")


def edgemap_int8(fp32: Path, calib: np.ndarray, out: Path) -> Path:
    """edgemap's static INT8 with its default settings."""
    from edgemap.compress.quantize import QuantizeStatic, quantize_static_onnx

    quantize_static_onnx(fp32, out, calib, QuantizeStatic(samples=len(calib)))
    return out


def edgemap_litert_int8(fp32: Path, calib: np.ndarray, parity_x: np.ndarray, out: Path) -> Path:
    """edgemap's LiteRT INT8 conversion (the backend the map chose on ByomNet), parity-gated on real inputs."""
    from edgemap.convert.api import convert

    return convert(fp32, "litert", out, precision="int8", calibration=calib, inputs=parity_x).path


def edgemap_openvino_int8(fp32: Path, calib: np.ndarray, parity_x: np.ndarray, out: Path) -> Path:
    """edgemap's OpenVINO INT8 conversion (NNCF inside, behind edgemap's parity gate)."""
    from edgemap.convert.api import convert

    return convert(fp32, "openvino", out, precision="int8", calibration=calib, inputs=parity_x).path


def pruned_int8(setup: dict, ratio: float, calib: np.ndarray, out_dir: Path, name: str, importance: str = "l2",
                steps: int = FT_STEPS) -> tuple[Path, dict]:
    """Convert, prune, fine-tune within the budget (distilled, early stop in bound), export, quantize."""
    import torch

    from edgemap.compress.prune import PruneChannels, prune_model
    from edgemap.convert.onnx_export import export_onnx
    from edgemap.convert.onnx_to_torch import onnx_to_torch
    from edgemap.models.stats import count_macs
    from edgemap.train.budget import FinetuneBudget, finetune
    from edgemap.train.evaluate import evaluate

    torch.set_num_threads(1)
    teacher = onnx_to_torch(setup["onnx"])
    target = evaluate(teacher, setup["val"], setup["spec"]).top1
    x, y = next(_first_batch(setup))
    student = prune_model(teacher, PruneChannels(ratio=ratio, importance=importance), setup["shape"], batch=(x, y))
    before = evaluate(student, setup["val"], setup["spec"]).top1
    t0 = time.perf_counter()
    result = finetune(student, setup["train"], setup["spec"],
                      FinetuneBudget(max_steps=steps, batch_size=FT_BATCH, eval_every=25, max_drop=PRUNE_BOUND),
                      val_set=setup["val"], target=target, teacher=teacher, log=lambda s: print(name, s, flush=True))
    wall = time.perf_counter() - t0
    fp32 = export_onnx(student.eval(), out_dir / f"{name}.pruned{int(ratio * 100)}.onnx", input_shape=setup["shape"])
    path = edgemap_int8(fp32, calib, out_dir / f"{name}.pruned{int(ratio * 100)}.int8.onnx")
    record = {"ratio": ratio, "importance": importance, "teacher_val_top1": round(target, 2),
              "pruned_val_top1_before_finetune": round(before, 2),
              "macs": {"teacher": count_macs(teacher, setup["shape"]), "student": count_macs(student, setup["shape"])},
              "finetune": result.to_dict(), "finetune_wall_s": round(wall, 1), "fp32_pruned_onnx": str(fp32)}
    return path, record


def _first_batch(setup: dict):  # noqa: ANN202 - iterator of (x, y)
    import torch

    idx = np.arange(64)
    yield (torch.from_numpy(setup["spec"].apply(setup["train"].images[idx])), torch.from_numpy(setup["train"].labels[idx]))


def map_candidates(map_dir: Path | None, name: str) -> dict[str, tuple[Path, str]]:
    """The map's choice and, per pruning ratio, its most accurate INT8 trial (name -> (file, backend))."""
    import json

    if map_dir is None or not (map_dir / name / "results.json").is_file():
        return {}
    summary = json.loads((map_dir / name / "results.json").read_text())
    chosen = summary.get("chosen") or {}
    out = {}
    if chosen.get("model_path"):
        c = chosen["candidate"]
        out[f"map_chosen_p{c['prune_ratio']:g}_{c['precision']}"] = (Path(chosen["model_path"]), c["backend"])
    best: dict[float, dict] = {}
    for t in summary["trials"]:
        c = t["candidate"]
        if (t.get("error") or c["precision"] != "int8" or t.get("model_path") == chosen.get("model_path")
                or t["accuracy_drop"] > 1.0):  # outside the map's default accuracy bound
            continue
        if c["prune_ratio"] not in best or t["accuracy"] > best[c["prune_ratio"]]["accuracy"]:
            best[c["prune_ratio"]] = t
    for r, t in sorted(best.items()):
        out[f"map_p{r:g}_int8"] = (Path(t["model_path"]), t["candidate"]["backend"])
    listed = {str(p) for p, _ in out.values()}
    for r, t in sorted(fastest_within(summary["trials"], MAX_DROP).items()):  # the bound, any precision
        if t["model_path"] not in listed:
            c = t["candidate"]
            out[f"map_p{r:g}_fastest_{c['precision']}_{c['backend']}"] = (Path(t["model_path"]), c["backend"])
    return out


def fastest_within(trials: list[dict], max_drop: float) -> dict[float, dict]:
    """Per pruning ratio, the map's trial with the lowest search latency among those within max_drop of FP32."""
    out: dict[float, dict] = {}
    for t in trials:
        if t.get("error") or t.get("latency_ms") is None or t["accuracy_drop"] > max_drop:
            continue
        r = t["candidate"]["prune_ratio"]
        if r not in out or t["latency_ms"] < out[r]["latency_ms"]:
            out[r] = t
    return out


def map_pruned_fp32(map_dir: Path | None, name: str) -> dict[float, Path]:
    """The map's pruned FP32 files at ratios where its search tried no INT8 (a 6-trial search may not have)."""
    import json

    if map_dir is None or not (map_dir / name / "results.json").is_file():
        return {}
    trials = [t for t in json.loads((map_dir / name / "results.json").read_text())["trials"] if not t.get("error")]
    int8 = {t["candidate"]["prune_ratio"] for t in trials if t["candidate"]["precision"] == "int8"}
    return {t["candidate"]["prune_ratio"]: Path(t["model_path"]) for t in trials
            if t["candidate"]["prune_ratio"] > 0 and t["candidate"]["precision"] == "fp32"
            and t["candidate"]["prune_ratio"] not in int8}


def map_int8(fp32: Path, calib: np.ndarray, out: Path) -> Path:
    """INT8 the way the map builds it (static, MinMax, first conv and classifier in float: search/compile.py)."""
    from edgemap.compress.quantize import QuantizeStatic, quantize_static_onnx

    quantize_static_onnx(fp32, out, calib, QuantizeStatic(samples=len(calib), float_first_last=True))
    return out


def run_model(name: str, out: Path, prune: tuple[float, ...], importance: str = "l2", steps: int = FT_STEPS,
              map_dir: Path | None = None) -> dict:
    """Everything for one model: candidates, peers, scoring, isolated timing, exact-1000 accuracy."""
    from edgemap.peers.compare import accuracy_of, compare_with_peers

    setup = model_setup(name, out)
    spec, train, test = setup["spec"], setup["train"], setup["test"]
    calib_idx = np.sort(np.random.default_rng(0).choice(len(train), CALIB, replace=False))
    calib = spec.apply(train.images[calib_idx])
    work = out / "peers" / name
    work.mkdir(parents=True, exist_ok=True)
    candidates = {"edgemap_int8": (edgemap_int8(setup["onnx"], calib, work / f"{name}.edgemap_int8.onnx"), "onnxruntime"),
                  **map_candidates(map_dir, name)}
    for r, fp32 in map_pruned_fp32(map_dir, name).items():  # the map's pruned model, quantized as the map would
        candidates[f"map_p{r:g}_int8_built_here"] = (map_int8(fp32, calib, work / f"{name}.map_p{r:g}.int8.onnx"),
                                                     "onnxruntime")
    parity_x, notes = spec.apply(setup["val"].images[:500]), []
    sources = {"": setup["onnx"]}
    pruning = {}
    for r in prune:
        path, pruning[str(r)] = pruned_int8(setup, r, calib, work, name, importance, steps)
        candidates[f"edgemap_prune{int(r * 100)}_int8"] = (path, "onnxruntime")
        sources[f"_prune{int(r * 100)}"] = Path(pruning[str(r)]["fp32_pruned_onnx"])
    for tag, fp32 in sources.items() if map_dir is None else ():  # with the map's choices: those, not every backend
        for backend, fn, suffix in (("litert", edgemap_litert_int8, ".tflite"), ("openvino", edgemap_openvino_int8, ".xml")):
            try:
                path = fn(fp32, calib, parity_x, work / f"{name}{tag}.{backend}_int8{suffix}")
                candidates[f"edgemap{tag}_{backend}_int8"] = (path, backend)
            except Exception as exc:  # record why this edgemap path gave no candidate, keep the rest
                notes.append(f"{backend} INT8 of {fp32.name}: {(str(exc).splitlines() or [type(exc).__name__])[0][:300]}")
    x, y = spec.apply(test.images), test.labels
    report = compare_with_peers(setup["onnx"], calib, x, y, work, candidates, max_drop=MAX_DROP, threads=THREADS,
                                rounds=ROUNDS, runs=RUNS)
    for row in report["rows"]:
        row["accuracy_exact1000"] = round(accuracy_of(row["path"], row["backend"], x[:1000], y[:1000]), 2)
    report["model"], report["pruning"], report["notes"] = name, pruning, notes
    return report


def markdown(reports: list[dict], ev: dict, command: str) -> str:
    """One table per model, the verdict lines, and the evidence."""
    from edgemap.peers.compare import markdown_table

    parts = ["# edgemap vs the INT8 a user would otherwise make, on models edgemap has never seen\n", f"`{command}`\n",
             f"CPU {ev['cpu']} (flags: {', '.join(ev['cpu_flags']) or 'none'}; INT8 dot products: "
             f"{'VNNI' if any('vnni' in f for f in ev['cpu_flags']) else 'no VNNI'}), {ev['logical_cpus']} logical CPUs, "
             f"load average {ev.get('load_average')} at the end (host shared by six sessions: spreads are wide). "
             f"Versions: {ev['versions']}. Timing: one fresh process per model, thread count and round, {ROUNDS} "
             f"rounds x {RUNS} runs at batch 1, threads {THREADS}, best thread count per model; top-1 on the "
             f"10,000 CIFAR-10 test images (exact-1000 in the JSON). Best peer: the fastest within {MAX_DROP} points "
             f"of FP32.\n"]
    for rep in reports:
        parts.append(f"## {rep['model']}\n\n" + markdown_table(rep) + "\n")
        parts += [f"- note: {n}\n" for n in rep.get("notes", [])]
        for r, p in rep["pruning"].items():
            parts.append(f"- pruning {r}: teacher {p['teacher_val_top1']} % on held-out training images, pruned "
                         f"{p['pruned_val_top1_before_finetune']} % before fine-tuning ({p.get('importance', 'l2')} "
                         f"importance); fine-tuning "
                         f"{p['finetune']['budget_used']} ({p['finetune']['optimizer']}, lr {p['finetune']['lr']:.3g}); "
                         f"MACs {p['macs']['teacher']:,} -> {p['macs']['student']:,}\n")
    return "\n".join(parts)


def main() -> None:
    """Run every model and write the results."""
    from compress_common import write_result_json  # the JSON is an export of the results store
    from edgemap.core.evidence import machine_evidence

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "unseen")
    ap.add_argument("--models", default="graynet,dwhsnet")
    ap.add_argument("--prune", default="0.25", help="comma-separated ratios ('' for none)")
    ap.add_argument("--tag", default="", help="suffix of the result files")
    ap.add_argument("--importance", default="l2", help="pruning importance: l2, l1 or taylor")
    ap.add_argument("--ft-steps", type=int, default=FT_STEPS, help="fine-tuning budget in optimizer steps")
    ap.add_argument("--render-only", action="store_true", help="rewrite the .md from the stored .json (no measuring)")
    ap.add_argument("--map-dir", type=Path, default=None, help="unseen_map.py's --work folder: add each map's choices")
    args = ap.parse_args()
    stem = ROOT / "benchmarks" / "results" / f"peers_unseen{args.tag}"
    if args.render_only:
        import json

        stored = json.loads(stem.with_suffix(".json").read_text())
        stem.with_suffix(".md").write_text(markdown(stored["reports"], stored["evidence"], stored["command"]))
        return
    prune = tuple(float(r) for r in args.prune.split(",") if r.strip())
    reports = [run_model(name, args.out, prune, args.importance, args.ft_steps, args.map_dir)
               for name in args.models.split(",")]
    ev = machine_evidence()
    command = (f"nice -n 5 .venv/bin/python benchmarks/peers_unseen.py --models {args.models} --prune '{args.prune}' "
               f"--importance {args.importance} --ft-steps {args.ft_steps}" + (f" --tag {args.tag}" if args.tag else "")
               + (f" --map-dir {args.map_dir}" if args.map_dir else ""))
    write_result_json(stem.with_suffix(".json"), {"command": command, "reports": reports, "evidence": ev})
    stem.with_suffix(".md").write_text(markdown(reports, ev, command))
    print(markdown(reports, ev, command))


if __name__ == "__main__":
    main()
