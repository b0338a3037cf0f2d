"""ByomNet: a small VGG-style CNN with BatchNorm for 48 x 48 RGB images, 5 classes.

Deliberately unlike the zoo: another input size, another class count, a flatten + two-layer
classifier head (no global pooling), so that edgemap meets it as a stranger. Entry point for
edgemap: `benchmarks/byom/net.py:build` (or `benchmarks.byom.net:build` from the repo root).
"""

from __future__ import annotations

import torch
from torch import nn

INPUT_SHAPE = (3, 48, 48)
NUM_CLASSES = 5


def _conv(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class ByomNet(nn.Module):
    """stem (stride 2) -> 2 conv + pool -> 2 conv + pool -> conv + pool -> flatten -> fc -> fc."""

    input_shape = INPUT_SHAPE

    def __init__(self, num_classes: int = NUM_CLASSES, width: int = 16) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            *_conv(3, w, stride=2),                                 # 24 x 24
            *_conv(w, 2 * w), *_conv(2 * w, 2 * w), nn.MaxPool2d(2),  # 12 x 12
            *_conv(2 * w, 4 * w), *_conv(4 * w, 4 * w), nn.MaxPool2d(2),  # 6 x 6
            *_conv(4 * w, 8 * w), nn.MaxPool2d(2),                  # 3 x 3
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(8 * w * 9, 64), nn.ReLU(inplace=True),
                                        nn.Dropout(0.2), nn.Linear(64, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of N x 3 x 48 x 48 images."""
        return self.classifier(self.features(x))


def build() -> ByomNet:
    """Entry point: a freshly initialised ByomNet (weights come from a safetensors file)."""
    return ByomNet()
