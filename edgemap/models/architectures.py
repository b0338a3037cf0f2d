"""Reference architectures for 32x32 classification, written out (no torchvision here)."""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_relu(cin: int, cout: int, stride: int = 1, groups: int = 1, kernel: int = 3) -> nn.Sequential:
    """Conv (no bias) + BatchNorm + ReLU, the building block every model here uses."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class WriteupCNN(nn.Module):
    """The classic two-conv CNN of the original write-up: conv 3->32, conv 32->64, ReLU, linear 64*8*8->10.

    As written the net cannot run: nothing reduces 32x32 to the 8x8 the linear layer expects.
    We add the two 2x2 max-poolings (one after each conv) that make it consistent:
    32x32 -> 16x16 -> 8x8. Nothing else is added (no BatchNorm, no dropout).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        self.classifier = nn.Linear(64 * 8 * 8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class Residual(nn.Module):
    """x + f(x) with two conv-bn-relu blocks of the same width."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(conv_bn_relu(channels, channels), conv_bn_relu(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResNet9(nn.Module):
    """The DAWNBench ResNet-9 layout (Page, 2018) at a chosen base width.

    prep -> [conv, pool, residual] -> [conv, pool] -> [conv, pool, residual] -> global max pool -> linear.
    With width=16 (16/32/64/128 channels) it is ~24 M MACs and trains on two CPU cores in minutes.
    The logits are scaled by 0.125 as in the original, which steadies training with label smoothing.
    """

    def __init__(self, num_classes: int = 10, width: int = 16, in_channels: int = 3) -> None:
        super().__init__()
        w1, w2, w3, w4 = width, 2 * width, 4 * width, 8 * width
        self.prep = conv_bn_relu(in_channels, w1)
        self.layer1 = nn.Sequential(conv_bn_relu(w1, w2), nn.MaxPool2d(2), Residual(w2))
        self.layer2 = nn.Sequential(conv_bn_relu(w2, w3), nn.MaxPool2d(2))
        self.layer3 = nn.Sequential(conv_bn_relu(w3, w4), nn.MaxPool2d(2), Residual(w4))
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.classifier = nn.Linear(w4, num_classes)
        self.logit_scale = 0.125

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.prep(x))))
        return self.classifier(torch.flatten(self.pool(x), 1)) * self.logit_scale


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear projection; skip when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = [conv_bn_relu(cin, hidden, kernel=1)] if expand != 1 else []
        layers += [
            conv_bn_relu(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.block = nn.Sequential(*layers)
        self.use_skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_skip else y


class MobileNetV2Cifar(nn.Module):
    """MobileNetV2 (Sandler et al., 2018) adapted to 32x32: stride-1 stem, fewer downsamplings, width 0.5.

    ReLU stands in for ReLU6 so that INT8 quantizers fuse it; the stage table is the paper's
    with the first two strides set to 1 as is usual for CIFAR.
    """

    # (expand, out_channels, repeats, stride) at width 1.0
    STAGES = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, num_classes: int = 10, width_mult: float = 0.5, in_channels: int = 3) -> None:
        super().__init__()
        scale = lambda c: max(8, int(c * width_mult + 4) // 8 * 8)  # noqa: E731 - round to 8 as the paper does
        cin = scale(32)
        layers: list[nn.Module] = [conv_bn_relu(in_channels, cin)]
        for expand, cout, repeats, stride in self.STAGES:
            for i in range(repeats):
                layers.append(InvertedResidual(cin, scale(cout), stride if i == 0 else 1, expand))
                cin = scale(cout)
        last = 640 if width_mult <= 0.5 else 1280
        layers.append(conv_bn_relu(cin, last, kernel=1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class TinyNet(nn.Module):
    """A tiny conv net for tests: two conv-bn-relu blocks, global pool, linear (~3 k parameters)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(conv_bn_relu(in_channels, 8, stride=2), conv_bn_relu(8, 16, stride=2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))
