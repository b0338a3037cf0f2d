"""Bring-your-own-model benchmark: an image folder edgemap has never seen and a model not from the zoo.

    .venv/bin/python benchmarks/byom_make.py            # ~9 min on one CPU thread (2-core host)

1. writes out/byom/data/{train,test}/<class>/*.png: 5 CIFAR-10 classes, upscaled 32 -> 48 px (bilinear);
2. trains benchmarks/byom/net.py:build (ByomNet, VGG-style with BatchNorm) on the folder;
3. saves out/byom/byom_net.safetensors, exports out/byom/byom_net.onnx and out/byom/byom_net.pt2;
4. evaluates all three through edgemap's user-model path (the same code as `edgemap eval`);
5. records the figures with their evidence in benchmarks/results/byom.json.
The folder and models are outputs (out/ is git-ignored); only the JSON is committed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# ---- settings ----------------------------------------------------------------------------------
CLASSES = ("airplane", "automobile", "bird", "cat", "ship")  # CIFAR-10 names, folder order = sorted
SIZE = 48             # image side in the folder (CIFAR is 32)
TRAIN_PER_CLASS = 5000  # all of CIFAR-10's training images of these classes
TEST_PER_CLASS = 1000  # the whole CIFAR-10 test split of these classes
EPOCHS = 10
BATCH = 128
LR = 0.2              # one-cycle peak, SGD + Nesterov
PREPROCESS = "resize=48x48,scale=1/255,mean=0.5,std=0.25"  # not CIFAR's mean/std, on purpose
ENTRY = "benchmarks/byom/net.py:build"
CIFAR = Path("/work/shared/data/cifar10")
# -------------------------------------------------------------------------------------------------


def make_folder(out: Path, split: str, per_class: int) -> int:
    """Write the class folders of one split as PNGs (skipped when already complete); returns the image count."""
    from PIL import Image

    from edgemap.data.dataset import CIFAR10_CLASSES

    root = out / split
    marker = root / ".complete"
    if marker.is_file() and marker.read_text().split() == [str(per_class)]:
        return sum(1 for _ in root.glob("*/*.png"))
    if root.exists():
        shutil.rmtree(root)  # a folder made with other settings
    with np.load(CIFAR / f"cifar10_{split}.npz") as z:
        images, labels = z["images"], z["labels"]
    n = 0
    for cls in CLASSES:
        idx = np.flatnonzero(labels == CIFAR10_CLASSES.index(cls))[:per_class]
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in idx:
            Image.fromarray(images[i]).resize((SIZE, SIZE), Image.BILINEAR).save(root / cls / f"{i:05d}.png")
            n += 1
    marker.write_text(f"{per_class}\n")
    return n


def train_model(train_dir: Path, weights: Path, threads: int, epochs: int) -> dict:
    """Train ByomNet on the folder with edgemap's training loop; the spec's mean/std as its Normalization."""
    import torch

    from edgemap.data.image_folder import load_image_folder
    from edgemap.data.preprocess import parse_preprocess
    from edgemap.data.transforms import Normalization
    from edgemap.models.sources.entry_point import import_entry_point
    from edgemap.train.loop import TrainConfig, train

    torch.set_num_threads(threads)
    spec = parse_preprocess(PREPROCESS)
    norm = Normalization(spec.mean * 3, spec.std * 3)  # = the spec on 48 x 48 folder images (no resize needed)
    data = load_image_folder(train_dir)
    model = import_entry_point(str(ROOT / ENTRY))()
    cfg = TrainConfig(epochs=epochs, batch_size=BATCH, lr=LR, threads=threads, label_smoothing=0.1)
    t0 = time.perf_counter()
    history = train(model, data, cfg, norm, progress=False)
    wall = time.perf_counter() - t0
    from safetensors.torch import save_file

    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(weights))
    return {"train_images": len(data), "epochs": epochs, "batch_size": BATCH, "lr": LR,
            "train_wall_s": round(wall, 1), "last_epoch": history["history"][-1]}


def evaluate_all(out: Path, weights: Path, threads: int) -> dict:
    """Accuracy of the entry point, its ONNX export and its .pt2, through the user-model evaluation path."""
    import torch

    from edgemap.commands.evaluate import run_user_eval
    from edgemap.models.sources import load_user_model

    model = load_user_model(str(ROOT / ENTRY), weights)
    onnx_path = model.export_onnx(out / "byom_net.onnx")
    program = torch.export.export(model.torch_module(), (torch.zeros(2, *model.info.input_shape),),
                                  dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},))
    torch.export.save(program, str(out / "byom_net.pt2"))
    results = {}
    for name, src, w in (("entry_point", str(ROOT / ENTRY), weights), ("onnx", onnx_path, None),
                         ("pt2", out / "byom_net.pt2", None)):
        t0 = time.perf_counter()
        r = run_user_eval(str(src), out / "data" / "test", PREPROCESS, weights=w, threads=threads, confusion=False)
        results[name] = {"top1": r["top1"], "n": r["n"], "sanity_top1": r["sanity"]["top1"],
                         "eval_wall_s": round(time.perf_counter() - t0, 1)}
    return results


def main() -> None:
    """Make the folder, train (unless cached), export, evaluate, record."""
    from edgemap.core.atomic import write_json
    from edgemap.core.evidence import machine_evidence

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "byom")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--retrain", action="store_true", help="train again even when out/byom holds weights")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "byom.json")
    args = ap.parse_args()
    counts = {s: make_folder(args.out / "data", s, n) for s, n in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS))}
    weights = args.out / "byom_net.safetensors"
    training_json = args.out / "training.json"
    if args.retrain or not weights.is_file() or not training_json.is_file():
        write_json(training_json, train_model(args.out / "data" / "train", weights, args.threads, args.epochs))
    training = json.loads(training_json.read_text())
    accuracy = evaluate_all(args.out, weights, args.threads)
    figures = {"what": "ByomNet (benchmarks/byom/net.py) on 5 CIFAR-10 classes upscaled to 48x48, image folder",
               "command": f"python benchmarks/byom_make.py --threads {args.threads} --epochs {args.epochs}",
               "classes": list(CLASSES), "images": counts, "preprocess": PREPROCESS, "entry_point": ENTRY,
               "training": training, "accuracy_percent": accuracy, "evidence": machine_evidence(args.threads)}
    write_json(args.results, figures)
    print({k: v["top1"] for k, v in accuracy.items()}, "->", args.results)


if __name__ == "__main__":
    main()
