"""Two model families that are not in edgemap's zoo, for benchmarks/unseen_*.py.

- GrayNet: a plain grayscale CNN without BatchNorm (biases, ReLU, max-pooling, global average pool),
  the kind a user trains with Adam and hands over as ONNX. 1 x 32 x 32 input.
- DwHsNet: a MobileNetV3-like residual net: inverted bottlenecks with depthwise 3x3 convolutions,
  hardswish, BatchNorm, residual additions. 3 x 32 x 32 CIFAR-10 input.
Entry points: `benchmarks/unseen/nets.py:graynet` and `benchmarks/unseen/nets.py:dwhsnet`.
"""

from __future__ import annotations

from torch import nn


class GrayNet(nn.Module):
    """conv32-conv32-pool-conv64-conv64-pool-conv128-GAP-fc, no normalisation layers."""

    input_shape = (1, 32, 32)

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()

        def conv(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(*conv(1, 32), *conv(32, 32), nn.MaxPool2d(2), *conv(32, 64), *conv(64, 64),
                                      nn.MaxPool2d(2), *conv(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(128, num_classes)

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.classifier(self.features(x))


class Bottleneck(nn.Module):
    """1x1 expand -> BN -> hardswish -> 3x3 depthwise -> BN -> hardswish -> 1x1 project -> BN (+ input)."""

    def __init__(self, cin: int, cout: int, expand: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        self.block = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.Hardswish(),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid), nn.Hardswish(),
            nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):  # noqa: ANN001, ANN201
        y = self.block(x)
        return x + y if self.residual else y


class DwHsNet(nn.Module):
    """stem 3x3 stride 2 (24) -> bottlenecks at 16, 8 and 4 px -> 1x1 (256) -> GAP -> fc."""

    input_shape = (3, 32, 32)
    # (out channels, expansion, stride, repeats)
    STAGES = ((24, 3, 1, 2), (40, 4, 2, 2), (64, 4, 1, 3), (96, 4, 2, 1))

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, 24, 3, 2, 1, bias=False), nn.BatchNorm2d(24), nn.Hardswish()]
        cin = 24
        for cout, expand, stride, repeats in self.STAGES:
            for i in range(repeats):
                layers.append(Bottleneck(cin, cout, expand, stride if i == 0 else 1))
                cin = cout
        layers += [nn.Conv2d(cin, 256, 1, bias=False), nn.BatchNorm2d(256), nn.Hardswish(),
                   nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(256, num_classes)

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.classifier(self.features(x))


def graynet(num_classes: int = 10) -> GrayNet:
    """Entry point: GrayNet."""
    return GrayNet(num_classes)


def dwhsnet(num_classes: int = 10) -> DwHsNet:
    """Entry point: DwHsNet."""
    return DwHsNet(num_classes)
