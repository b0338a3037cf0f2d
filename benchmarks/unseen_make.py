"""Build the two models edgemap has never seen (benchmarks/unseen/nets.py), as a user would hand them over.

    nice -n 5 .venv/bin/python benchmarks/unseen_make.py     # ~15 min on one thread of the shared 2-core host

1. out/unseen/gray/{train,test}/<class>/*.png: CIFAR-10 in grayscale (pillow 'L'), 6,000 training images
   (the first 6,000 of the training split) and the whole test split (file names keep the test index, so
   the first 1,000, the bit-exact ones, can be told apart);
2. GrayNet (no BatchNorm) trained with Adam (lr 1e-3, crop + flip) on that folder, its outputs in a class
   order that is NOT the folders' alphabetical one (written to out/unseen/graynet.labels.txt, not into the
   file: the user knows it, edgemap does not) -> out/unseen/graynet.onnx;
3. DwHsNet (depthwise + hardswish residual, BatchNorm) trained with edgemap's SGD loop on 10,000 CIFAR-10
   training images -> out/unseen/dwhsnet.onnx (+ .safetensors of the torch weights);
4. accuracy of both ONNX files on all 10,000 test images and on the 1,000 exact ones, with evidence, in
   benchmarks/results/unseen_make.json;
5. validation images neither model was trained on, for `map --val-data`: out/unseen/gray/val/<class>/*.png
   (CIFAR-10 training images 6,000-7,999 in grayscale) and out/unseen/dw_val.npz (training images 40,000-41,999).
Settings are short on purpose (the machine is shared by six sessions): these are stand-ins for a user's
models, not well-trained ones.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# ---- settings ----------------------------------------------------------------------------------
CIFAR = Path("/work/shared/data/cifar10")
GRAY_TRAIN = 6000          # images in the grayscale training folder (the 6,000)
GRAY_EPOCHS = 8            # Adam, batch 64: 750 steps
GRAY_LR = 1e-3
GRAY_PREPROCESS = "channels=gray,scale=1/255,mean=0.5,std=0.25"
GRAY_ORDER_SEED = 22       # the model's class order: a seeded shuffle of the CIFAR-10 names
DW_TRAIN = 10000           # CIFAR-10 training images for DwHsNet
DW_EPOCHS = 4
DW_LR = 0.2                # one-cycle peak, SGD + Nesterov (edgemap's loop)
GRAY_VAL = (6000, 8000)    # training images GrayNet never saw: its --val-data folder
DW_VAL = (40000, 42000)    # training images DwHsNet never saw (it trained on the first DW_TRAIN): its --val-data .npz
# -------------------------------------------------------------------------------------------------


def model_order() -> tuple[str, ...]:
    """GrayNet's output order: the CIFAR-10 names shuffled, so that sorted folders disagree with it."""
    from edgemap.data.dataset import CIFAR10_CLASSES

    return tuple(np.array(CIFAR10_CLASSES)[np.random.default_rng(GRAY_ORDER_SEED).permutation(10)])


def make_gray_folder(root: Path) -> dict:
    """Grayscale PNG folders of the training subset and the whole test split (skipped when complete)."""
    from PIL import Image

    from edgemap.data.dataset import CIFAR10_CLASSES

    counts = {}
    for split, n in (("train", GRAY_TRAIN), ("test", 10000)):
        marker = root / split / ".complete"
        if not marker.is_file():
            with np.load(CIFAR / f"cifar10_{split}.npz") as z:
                images, labels = z["images"][:n], z["labels"][:n]
            for i, (img, y) in enumerate(zip(images, labels)):
                d = root / split / CIFAR10_CLASSES[int(y)]
                d.mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).convert("L").save(d / f"{i:05d}.png")
            marker.write_text(f"{n}\n")
        counts[split] = sum(1 for _ in (root / split).glob("*/*.png"))
    return counts


def make_val_sets(out: Path) -> dict:
    """Validation images neither model was trained on (skipped when present): a grayscale folder and an .npz."""
    from PIL import Image

    from edgemap.data.dataset import CIFAR10_CLASSES

    with np.load(CIFAR / "cifar10_train.npz") as z:
        images, labels = z["images"], z["labels"]
    marker = out / "gray" / "val" / ".complete"
    if not marker.is_file():
        for i in range(*GRAY_VAL):
            d = out / "gray" / "val" / CIFAR10_CLASSES[int(labels[i])]
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i]).convert("L").save(d / f"{i:05d}.png")
        marker.write_text(f"{GRAY_VAL[1] - GRAY_VAL[0]}\n")
    if not (out / "dw_val.npz").is_file():
        lo, hi = DW_VAL
        np.savez(out / "dw_val.npz", images=images[lo:hi], labels=labels[lo:hi])
    return {"gray_val": list(GRAY_VAL), "dw_val": list(DW_VAL)}


def train_graynet(folder: Path, threads: int) -> tuple[object, dict]:
    """Adam on the folder, labels in the model's own order (relabelled by name, as --classes does)."""
    import torch
    import torch.nn.functional as F

    from benchmarks.unseen.nets import graynet
    from edgemap.data.classes import align_to_model
    from edgemap.data.image_folder import load_image_folder
    from edgemap.data.preprocess import parse_preprocess
    from edgemap.train.augment import random_crop_flip

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    data = align_to_model(load_image_folder(folder), model_order())
    spec = parse_preprocess(GRAY_PREPROCESS)
    model = graynet()
    opt = torch.optim.Adam(model.parameters(), lr=GRAY_LR)
    rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    t0, history = time.perf_counter(), []
    for epoch in range(GRAY_EPOCHS):
        model.train()
        order, correct = rng.permutation(len(data)), 0
        for start in range(0, len(order), 64):
            idx = order[start:start + 64]
            x = random_crop_flip(torch.from_numpy(spec.apply(data.images[idx])), 4, gen)
            y = torch.from_numpy(data.labels[idx])
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            correct += int((logits.argmax(1) == y).sum())
        history.append({"epoch": epoch + 1, "train_acc": round(100 * correct / len(data), 2),
                        "wall_s": round(time.perf_counter() - t0, 1)})
        print("graynet", history[-1], flush=True)
    return model.eval(), {"optimizer": "Adam", "lr": GRAY_LR, "batch": 64, "epochs": GRAY_EPOCHS,
                          "train_images": len(data), "history": history}


def train_dwhsnet(threads: int) -> tuple[object, dict]:
    """edgemap's training loop (SGD + Nesterov, one-cycle) on the first DW_TRAIN CIFAR-10 training images."""
    from benchmarks.unseen.nets import dwhsnet
    from edgemap.data.cifar10 import load_cifar10
    from edgemap.data.transforms import Normalization
    from edgemap.train.loop import TrainConfig, train

    import torch

    torch.manual_seed(0)
    data = load_cifar10("train", CIFAR).subset(slice(0, DW_TRAIN))
    model = dwhsnet()
    cfg = TrainConfig(epochs=DW_EPOCHS, batch_size=128, lr=DW_LR, threads=threads)
    state = train(model, data, cfg, Normalization(), progress=False)
    return model.eval(), {"optimizer": "SGD+Nesterov one-cycle (edgemap train loop)", "lr": DW_LR, "batch": 128,
                          "epochs": DW_EPOCHS, "train_images": len(data), "history": state["history"]}


def onnx_accuracy(path: Path, images: np.ndarray, labels: np.ndarray, spec) -> dict:  # noqa: ANN001
    """Top-1 on all test images and on the first 1,000 (the exact ones)."""
    from edgemap.data.compat import predict
    from edgemap.runtime.registry import load_session

    with load_session("onnxruntime", path, 0) as s:
        pred = predict(s, images, spec).argmax(1)
    ok = pred == labels
    return {"top1": round(float(ok.mean() * 100), 2), "top1_exact1000": round(float(ok[:1000].mean() * 100), 2),
            "n": int(len(ok))}


def main() -> None:
    """Build both models (cached in out/unseen unless --retrain) and record their accuracy."""
    import torch
    from safetensors.torch import save_file

    from edgemap.convert.onnx_export import export_onnx
    from edgemap.core.atomic import write_json
    from compress_common import write_result_json  # the JSON is an export of the results store
    from edgemap.core.evidence import machine_evidence
    from edgemap.data.cifar10 import load_cifar10
    from edgemap.data.dataset import CIFAR10_CLASSES
    from edgemap.data.preprocess import parse_preprocess

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "unseen")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--retrain", action="store_true")
    args = ap.parse_args()
    out = args.out
    counts = make_gray_folder(out / "gray")
    counts["val_training_indices"] = make_val_sets(out)
    record_path = out / "training.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() and not args.retrain else {}
    if "graynet" not in record:
        model, record["graynet"] = train_graynet(out / "gray" / "train", args.threads)
        export_onnx(model, out / "graynet.onnx", input_shape=(1, 32, 32))
        (out / "graynet.labels.txt").write_text("\n".join(model_order()) + "\n")
        write_json(record_path, record)
    if "dwhsnet" not in record:
        model, record["dwhsnet"] = train_dwhsnet(args.threads)
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(out / "dwhsnet.safetensors"))
        export_onnx(model, out / "dwhsnet.onnx")
        write_json(record_path, record)
    test = load_cifar10("test", CIFAR)
    order = model_order()
    gray_labels = np.array([order.index(CIFAR10_CLASSES[int(y)]) for y in test.labels])
    accuracy = {"graynet": onnx_accuracy(out / "graynet.onnx", test.images, gray_labels, parse_preprocess(GRAY_PREPROCESS)),
                "dwhsnet": onnx_accuracy(out / "dwhsnet.onnx", test.images, test.labels, parse_preprocess("cifar10"))}
    write_result_json(ROOT / "benchmarks" / "results" / "unseen_make.json", {
        "command": f"nice -n 5 .venv/bin/python benchmarks/unseen_make.py --threads {args.threads}",
        "folder_images": counts, "graynet_class_order": list(order), "graynet_preprocess": GRAY_PREPROCESS,
        "training": record, "accuracy_percent": accuracy, "evidence": machine_evidence(args.threads),
        "note": "timings in the training history are from a 2-core host shared by six sessions"})
    print(json.dumps(accuracy))


if __name__ == "__main__":
    main()
