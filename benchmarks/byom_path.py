"""Issue 6, the whole path on a user's model and images: `edgemap map` -> bundle -> `edgemap infer` on the user's
PNG files in a process where `import torch` is blocked -> the same top-1 as the mapped model evaluated in-process.

    .venv/bin/python benchmarks/byom_path.py     # -> benchmarks/results/byom_path.{json,md}

Bundles: those benchmarks/byom_map.py wrote (out/bench/byom_map/<run>/bundle); when there are none, the real
`edgemap map` command below is run first. Files: the first FILES_PER_CLASS PNG files (sorted) of each class
folder of the test split. The edge side reads its preprocessing from the bundle; the in-process reference
preprocesses with the spec typed on the map's command line and runs the mapped model file (edgemap.search.evaluate).
Target: 100 % top-1 agreement.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from compress_common import ROOT, write_results

# ---- settings --------------------------------------------------------------------------------
MODEL = ROOT / "out" / "byom" / "byom_net.onnx"
TEST = ROOT / "out" / "byom" / "data" / "test"
PREPROCESS = "resize=48x48,scale=1/255,mean=0.5,std=0.25"  # as typed on the map's command line
FILES_PER_CLASS = 200   # 5 classes -> 1,000 files
MAP_RUNS = ROOT / "out" / "bench" / "byom_map"  # bundles of benchmarks/byom_map.py
OWN_MAP = ROOT / "out" / "bench" / "byom_path" / "map"
TRIALS = 8              # for the own map, when byom_map.py has not run
# ------------------------------------------------------------------------------------------------

NO_TORCH = """
import atexit, sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("No module named 'torch' (blocked)")
sys.meta_path.insert(0, NoTorch())
atexit.register(lambda: sys.stderr.write(f"\\nTORCH_IMPORTED={'torch' in sys.modules}\\n"))
sys.argv = ["edgemap"] + sys.argv[1:]
from edgemap.cli import main
main()
"""


def pick_files(root: Path, per_class: int) -> tuple[list[Path], np.ndarray, tuple[str, ...]]:
    """The first `per_class` image files (sorted) of each class folder, their labels, the class names."""
    classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")))
    files, labels = [], []
    for i, c in enumerate(classes):
        picked = sorted((root / c).glob("*.png"))[:per_class]
        files += picked
        labels += [i] * len(picked)
    return files, np.asarray(labels), classes


def own_map() -> tuple[list[Path], str]:
    """Run `edgemap map` (the real command, no pruning) and return its bundle and the command."""
    cmd = [str(ROOT / ".venv" / "bin" / "edgemap"), "map", "--model", str(MODEL), "--data", str(TEST), "--preprocess",
           PREPROCESS, "--device", "host", "--max-accuracy-drop", "1.0", "--trials", str(TRIALS), "--out", str(OWN_MAP)]
    subprocess.run(cmd, check=True, cwd=ROOT)
    return [OWN_MAP / "bundle"], " ".join(cmd[1:])


def edge_infer(bundle: Path, files: list[Path], n_classes: int) -> dict:
    """`edgemap infer BUNDLE files... --json` in a fresh process with torch blocked: top-1 and probabilities per file."""
    args = ["infer", str(bundle), *map(str, files), "--json", "--top-k", str(n_classes)]
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, cwd=ROOT, timeout=1800)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"edgemap infer failed ({r.returncode}):\n{r.stderr[-3000:]}")
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    probs = np.zeros((len(rows), n_classes))
    for i, row in enumerate(rows):
        probs[i, row["indices"]] = row["probabilities"]
    return {"files": [row["file"] for row in rows], "top1": np.asarray([row["indices"][0] for row in rows]), "probs": probs,
            "torch_imported": "TORCH_IMPORTED=False" not in r.stderr, "wall_s": round(wall, 2),
            "command": "python -c <torch blocked> edgemap infer " + " ".join(args[1:2]) + f" <{len(files)} files> --json"}


def reference(bundle: Path, files: list[Path], labels: np.ndarray) -> dict:
    """The mapped model (the map's chosen file and runtime) on the files, preprocessed as the command line said."""
    from edgemap.data.image_folder import read_image
    from edgemap.data.preprocess import parse_preprocess
    from edgemap.deploy.bundle import read_manifest
    from edgemap.deploy.edge import softmax
    from edgemap.runtime.registry import load_session
    from edgemap.search.evaluate import accuracy

    chosen = json.loads((bundle.parent / "results.json").read_text())["chosen"]
    c = chosen["candidate"]
    spec = parse_preprocess(PREPROCESS)
    x = spec.apply(np.stack([read_image(f) for f in files]))
    with load_session(c["backend"], chosen["model_path"], c["threads"]) as s:
        top1, _, preds = accuracy(s, x, labels, np.ones(len(labels), bool))
        logits = np.concatenate([s.run(x[i:i + 100]) for i in range(0, len(x), 100)])
    return {"key": chosen["key"], "model": chosen["model_path"], "backend": c["backend"],
            "threads": c["threads"], "top1": preds, "accuracy": top1, "map_accuracy": chosen["accuracy"],
            "probs": softmax(logits.astype(np.float64)), "exact_top1_ties": int((np.diff(np.sort(logits, 1)[:, -2:], axis=1) == 0).sum()),
            "same_preprocess_as_bundle": spec.to_dict() == read_manifest(bundle)["preprocess"]}


def check_bundle(bundle: Path, files: list[Path], labels: np.ndarray, n_classes: int) -> dict:
    """Edge predictions vs the in-process reference on the same files."""
    from edgemap.deploy.bundle import read_manifest

    edge = edge_infer(bundle, files, n_classes)
    ref = reference(bundle, files, labels)
    same_order = edge["files"] == [str(f) for f in files]
    agree = float((edge["top1"] == ref["top1"]).mean() * 100) if same_order else 0.0
    manifest = read_manifest(bundle)
    return {"bundle": str(bundle.relative_to(ROOT)), "mapping": manifest.get("mapping", {}).get("key"),
            "bundle_preprocess": manifest["preprocess"], "files": len(files), "files_in_order": same_order,
            "top1_agreement_percent": agree, "disagreements": int((edge["top1"] != ref["top1"]).sum()),
            "max_abs_prob_diff": float(np.abs(edge["probs"] - ref["probs"]).max()),
            "edge_accuracy": float((edge["top1"] == labels).mean() * 100), "edge_torch_imported": edge["torch_imported"],
            "edge_wall_s": edge["wall_s"], "edge_files_per_s": round(len(files) / edge["wall_s"], 1),
            "edge_command": edge["command"], "reference": {k: v for k, v in ref.items() if k not in ("top1", "probs")},
            "met": agree == 100.0 and not edge["torch_imported"]}


def markdown(rec: dict) -> list[str]:
    """The short summary (results/byom_path.md)."""
    lines = ["# The whole path on a user's model and images: map -> bundle -> edge runtime without torch", "",
             f"Command: `{rec['command']}`  ", f"Map: {rec['map']}  ", f"Files: {rec['files']} ({rec['files_note']})  ",
             f"Load average: {rec['load_average']}; CPU: {rec['evidence']['cpu']} ({rec['evidence']['logical_cpus']} logical)", "",
             "| bundle | mapping | top-1 agreement | max abs prob diff | exact top-1 ties | edge top-1 % | reference top-1 % | "
             "torch imported | edge files/s (incl. start) | 100 %? |", "|---|---|---|---|---|---|---|---|---|---|"]
    for b in rec["bundles"]:
        lines.append(f"| {b['bundle']} | {b['mapping']} | {b['top1_agreement_percent']:.1f}% ({b['disagreements']} differ) | "
                     f"{b['max_abs_prob_diff']:.2e} | {b['reference']['exact_top1_ties']} | {b['edge_accuracy']:.2f} | {b['reference']['accuracy']:.2f} | "
                     f"{b['edge_torch_imported']} | {b['edge_files_per_s']} | **{b['met']}** |")
    return lines + ["", "Edge side: `edgemap infer BUNDLE FILES --json` in a fresh Python whose meta-path refuses `torch`, "
                    "preprocessing from the bundle. Reference: the map's chosen model file in the same runtime, "
                    "in-process, on the same decoded files preprocessed with the command line's spec "
                    "(edgemap.search.evaluate.accuracy). Exact top-1 ties: files whose two largest INT8 logits are equal "
                    "(top-1 is then the lower class index on both sides since the edge runtime sorts stably)."]


def main() -> None:
    """Find (or make) the bundles, check each on the same files, write results/NAME.{json,md}."""
    from edgemap.core.evidence import machine_evidence

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, action="append", help="bundle(s) to check (default: byom_map.py's)")
    ap.add_argument("--per-class", type=int, default=FILES_PER_CLASS)
    ap.add_argument("--name", default="byom_path", help="results file stem")
    args = ap.parse_args()
    load = {"before": list(os.getloadavg())}
    bundles = args.bundle or sorted(p for p in MAP_RUNS.glob("*/bundle") if (p / "manifest.json").is_file())
    map_note = "benchmarks/byom_map.py (see results/byom_map.md for the commands)"
    if not bundles:
        bundles, map_note = own_map()
    files, labels, classes = pick_files(TEST, args.per_class)
    files = [f.relative_to(ROOT) for f in files]
    checks = [check_bundle(Path(b).resolve(), files, labels, len(classes)) for b in bundles]
    load["after"] = list(os.getloadavg())
    rec = {"command": " ".join([".venv/bin/python"] + sys.argv), "map": map_note, "files": len(files),
           "files_note": f"first {args.per_class} sorted PNG files of each class of {TEST.relative_to(ROOT)}",
           "classes": classes, "bundles": checks, "met": all(c["met"] for c in checks), "load_average": load,
           "evidence": machine_evidence()}
    write_results(args.name, rec, markdown(rec))


if __name__ == "__main__":
    main()
