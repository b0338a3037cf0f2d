"""Pruned widths: the nearest multiple of round_to, never below one multiple, narrow layers unrounded; real MACs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgemap.compress.prune import PruneChannels, prune_model
from edgemap.compress.prune_widths import kept_width, macs_line
from edgemap.models.checkpoint import conv_widths
from edgemap.models.stats import count_macs


class DwBlock(nn.Module):
    """A depthwise residual block at 24 channels (DwHsNet's narrowest): expand 1x1, depthwise 3x3, project 1x1."""

    def __init__(self, width: int = 24, mid: int = 72) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.Hardswish(),
                                  nn.Conv2d(mid, mid, 3, 1, 1, groups=mid, bias=False), nn.BatchNorm2d(mid), nn.Hardswish(),
                                  nn.Conv2d(mid, width, 1, bias=False), nn.BatchNorm2d(width))

    def forward(self, x):  # noqa: ANN001, ANN201
        return x + self.body(x)


def dw24() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 24, 3, 2, 1, bias=False), nn.BatchNorm2d(24), nn.Hardswish(), DwBlock(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 10)).eval()


@pytest.mark.parametrize(("width", "ratio", "round_to", "kept"), [
    (72, 0.25, 8, 56), (64, 0.4, 8, 40), (128, 0.4, 8, 80),  # nearest multiple (54 -> 56, 38.4 -> 40, 76.8 -> 80)
    (48, 0.9, 8, 8),  # never below one multiple
    (24, 0.25, 8, 18), (24, 0.5, 8, 12), (16, 0.4, 8, 10),  # narrower than 4 x 8: not rounded
    (24, 0.25, None, 18), (5, 0.95, None, 1)])
def test_kept_width_rounds_to_the_nearest_multiple_above_a_floor(width, ratio, round_to, kept) -> None:  # noqa: ANN001
    assert kept_width(width, ratio, round_to) == kept


@pytest.mark.parametrize(("ratio", "widths"), [(0.25, [18, 56, 56, 18]), (0.5, [12, 40, 40, 12])])
def test_a_24_channel_model_keeps_its_ratio_with_round_to_8(ratio: float, widths: list[int]) -> None:
    model = dw24()
    for steps in (1, 3):  # one-shot and iterative reach the same widths
        pruned = prune_model(model, PruneChannels(ratio=ratio, round_to=8, iterative_steps=steps, finetune_epochs=0))
        assert conv_widths(pruned) == widths
    plain = prune_model(model, PruneChannels(ratio=ratio, finetune_epochs=0))  # no rounding at all
    before, after = count_macs(model, (3, 32, 32)), count_macs(pruned, (3, 32, 32))
    # the MACs removed are those of the ratio asked for, not of Torch-Pruning's rounding down (24 -> 16 at 0.25)
    assert after / before == pytest.approx(count_macs(plain, (3, 32, 32)) / before, abs=0.03)
    assert macs_line(before, after).startswith(f"MACs {before / 1e6:.2f} M -> {after / 1e6:.2f} M (-")
    with torch.no_grad():
        assert pruned(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
