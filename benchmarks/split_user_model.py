"""The benchmark's 'user' model: a plain CNN (no BatchNorm, no residuals) for 96x96 camera images, built and
trained here and handed to edgemap only as an .onnx file with a --preprocess string, as a user's own model.

Its stem cuts the image 16x in area at once (4x4 stride-4 convolution, then a 2x2 pooling), the way mobile
backbones do, so an early activation is smaller than the image: the case where splitting can beat sending
the input. Images: CIFAR-10 upscaled to 96x96 (bicubic, the same function for training and evaluation).

    .venv/bin/python benchmarks/split_user_model.py   # trains once (cached under runs/split_bench/)
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

SIZE = 96
EPOCHS = 3
BATCH = 256
LR = 2e-3
SEED = 0
PREPROCESS = "scale=1/255,mean=0.4914:0.4822:0.4465,std=0.247:0.2435:0.2616"


def build():  # noqa: ANN201 - nn.Module
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(3, 16, 4, stride=4), nn.ReLU(), nn.MaxPool2d(2),             # 96 -> 24 -> 12
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),           # 12 -> 6
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def upscale(images: np.ndarray) -> np.ndarray:
    """uint8 N x 32 x 32 x 3 -> uint8 N x 96 x 96 x 3 (bicubic, rounded and clipped)."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    y = F.interpolate(x, size=(SIZE, SIZE), mode="bicubic", align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def normalise(images_u8):  # noqa: ANN001, ANN201 - uint8 tensor NHWC -> float NCHW (PREPROCESS, in torch)
    import torch

    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.247, 0.2435, 0.2616]).view(1, 3, 1, 1)
    return (images_u8.permute(0, 3, 1, 2).float() / 255 - mean) / std


def train(out: Path, model=None, transform=upscale, size: int = SIZE, epochs: int = EPOCHS) -> dict:  # noqa: ANN001
    """Train `model` (default: build()) on the CIFAR-10 training split, images through `transform` (default: the
    96x96 upscale), flip augmentation, Adam + one-cycle; export FP32 ONNX to `out`; returns a record."""
    import torch

    from edgemap.convert.onnx_export import export_onnx
    from edgemap.data.cifar10 import load_cifar10

    torch.manual_seed(SEED)
    model = model if model is not None else build()
    train_set = load_cifar10("train")
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    steps = epochs * (len(train_set) // BATCH)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, LR, total_steps=steps)
    rng = np.random.default_rng(SEED)
    t0 = time.time()
    for _ in range(epochs):
        order = rng.permutation(len(train_set))
        for i in range(len(train_set) // BATCH):
            idx = order[i * BATCH:(i + 1) * BATCH]
            imgs = transform(train_set.images[idx])
            flip = rng.random(len(idx)) < 0.5
            imgs[flip] = imgs[flip, :, ::-1]
            x, y = normalise(torch.from_numpy(imgs)), torch.from_numpy(train_set.labels[idx].astype(np.int64))
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    out.parent.mkdir(parents=True, exist_ok=True)
    export_onnx(model.eval(), out, (3, size, size))
    return {"epochs": epochs, "train_s": round(time.time() - t0, 1), "final_loss": float(loss)}


def user_model(work: Path) -> tuple[str, str]:
    """Path of the trained .onnx (trained on first use) and its --preprocess string."""
    path = work / "user_plain_cnn96.onnx"
    if not path.is_file():
        print(f"training the user model: {train(path)}", flush=True)
    return str(path), PREPROCESS


def eval_images(data):  # noqa: ANN001, ANN201 - ImageSet -> ImageSet
    """The evaluation images as the 96x96 camera would deliver them."""
    from edgemap.data.dataset import ImageSet

    return ImageSet(upscale(data.images), data.labels, data.class_names, f"{data.source}, upscaled to {SIZE}x{SIZE}",
                    data.lossless)


if __name__ == "__main__":
    print(user_model(Path("runs/split_bench")))
