"""The benchmark's third model: a branching, non-residual CIFAR-10 net whose blocks fork and concatenate
(Inception-style blocks around DenseNet-style ones, no skip Add), built and briefly trained here, and handed
to edgemap only as an .onnx file with a --preprocess string, like a user's own model.

Blocks, 32x32 input: stem conv | Inception (1x1 | 1x1-3x3 | maxpool-1x1, concatenated) | maxpool | two dense
layers (each concatenates its input with conv(input)) | maxpool | Inception | global pool | linear. Inside a
block more than one tensor crosses any cut, so the split points fall between blocks only.

    EDGEMAP_CIFAR10=/work/shared/data/cifar10 .venv/bin/python benchmarks/split_branch_model.py
    # trains once (cached under runs/split_bench/), prints its cuts and the training record
"""

from __future__ import annotations

from pathlib import Path

EPOCHS = 1   # briefly trained: ~9 min of CPU on this host (2.7 s per batch of 256); the split is what is measured
SIZE = 32


def _cbr(cin: int, cout: int, k: int):  # noqa: ANN202 - nn.Sequential
    from torch import nn

    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


def _modules():  # noqa: ANN202 - (Inception, Dense) nn.Module classes, defined lazily so that torch loads only here
    import torch
    from torch import nn

    class Inception(nn.Module):
        """Three branches of the same input, concatenated along channels."""

        def __init__(self, cin: int, c1: int, c2: tuple[int, int], c3: int) -> None:
            super().__init__()
            self.b1 = _cbr(cin, c1, 1)
            self.b2 = nn.Sequential(_cbr(cin, c2[0], 1), _cbr(c2[0], c2[1], 3))
            self.b3 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), _cbr(cin, c3, 1))

        def forward(self, x):  # noqa: ANN001, ANN202
            return torch.cat([self.b1(x), self.b2(x), self.b3(x)], 1)

    class Dense(nn.Module):
        """DenseNet-style layer: its input and what it computes from it, concatenated."""

        def __init__(self, cin: int, growth: int) -> None:
            super().__init__()
            self.f = _cbr(cin, growth, 3)

        def forward(self, x):  # noqa: ANN001, ANN202
            return torch.cat([x, self.f(x)], 1)

    return Inception, Dense


def build():  # noqa: ANN201 - nn.Module
    from torch import nn

    inception, dense = _modules()
    return nn.Sequential(
        _cbr(3, 24, 3),                                  # 32x32
        inception(24, 16, (16, 24), 8),                  # -> 48
        nn.MaxPool2d(2),                                 # 16x16
        dense(48, 24), dense(72, 24),                    # -> 96
        nn.MaxPool2d(2),                                 # 8x8
        inception(96, 32, (24, 48), 16),                 # -> 96
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(96, 10))


def branch_model(work: Path) -> tuple[str, str]:
    """Path of the trained .onnx (trained on first use) and its --preprocess string (the user model's normalisation)."""
    from split_user_model import PREPROCESS, train

    path = work / "branch_inception_dense.onnx"
    if not path.is_file():
        import torch

        torch.manual_seed(0)
        print(f"training the branching model: {train(path, build(), lambda im: im.copy(), SIZE, EPOCHS)}", flush=True)
    return str(path), PREPROCESS


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from edgemap.split.graph import find_cuts, load_onnx

    onnx_path, pre = branch_model(Path("runs/split_bench"))
    print(onnx_path, pre)
    for c in find_cuts(load_onnx(onnx_path)):
        print(c)
