"""The width each layer keeps when a ratio of its channels is pruned with `round_to`: the NEAREST multiple, never
below one multiple, and no rounding at all for a layer narrower than NARROW x round_to.

Torch-Pruning's own round_to rounds the kept width DOWN: on DwHsNet (24-channel layers) round_to=8 kept 16 of 24
at ratio 0.25 (MACs -46 % instead of ~-25 %) and 8 at 0.5, where the 0.5 model stayed at chance
(benchmarks/results/unseen_map.md). Here each layer's kept width is worked out first and handed to Torch-Pruning as
a per-layer ratio, so the ratio asked for is the ratio removed, to the nearest multiple. The report notes widths that
lost their multiple of 8 (alignment_note) and the map states the MACs really removed (macs_line).
"""

from __future__ import annotations

import math

from torch import nn

INT8_ALIGN = 8  # channel multiple ONNX Runtime's INT8 conv kernels run fastest (benchmarks/results/prune_widths.md)
NARROW = 4  # layers narrower than NARROW x round_to keep round(width x (1 - ratio)) channels, unrounded
_EPS = 1e-6  # Torch-Pruning keeps int(width x (1 - ratio)) channels: nudge the ratio so the float lands on the integer


def kept_width(width: int, ratio: float, round_to: int | None) -> int:
    """Channels a layer of `width` keeps at `ratio`: the nearest multiple of round_to (at least one multiple), or
    the nearest integer (at least 1) when round_to is None or the layer is narrower than NARROW x round_to."""
    exact = width * (1 - ratio)
    if not round_to or round_to <= 1 or width < NARROW * round_to:
        return max(1, min(width, math.floor(exact + 0.5)))
    return max(round_to, min(width, round_to * math.floor(exact / round_to + 0.5)))


def output_width(module: nn.Module) -> int | None:
    """Output channels of a conv or linear layer (None for other modules)."""
    if isinstance(module, nn.Conv2d):
        return module.out_channels
    if isinstance(module, nn.Linear):
        return module.out_features
    return None


def layer_ratios(model: nn.Module, ratio: float, round_to: int | None, overrides: dict[nn.Module, float],
                 ignored: list[nn.Module]) -> dict[nn.Module, float]:
    """Per conv/linear layer (ignored ones left out): the ratio that makes Torch-Pruning keep kept_width channels.
    `overrides` are per-layer ratios given by the user (rounded the same way)."""
    out = {}
    skip = {id(m) for m in ignored}
    for module in model.modules():
        width = output_width(module)
        if width is None or id(module) in skip:
            continue
        keep = kept_width(width, float(overrides.get(module, ratio)), round_to)
        out[module] = max(0.0, 1 - (keep + _EPS) / width) if keep < width else 0.0
    return out


def macs_line(before: int, after: int) -> str:
    """'MACs 11.59 M -> 8.61 M (-25.7 %)': what pruning really removed."""
    return f"MACs {before / 1e6:.2f} M -> {after / 1e6:.2f} M ({100 * (after - before) / before:+.1f} %)"


def alignment_note(before: list[int], after: list[int], align: int = INT8_ALIGN) -> str | None:
    """A report note when pruning left conv widths that are not multiples of `align` where the original's all were:
    in ONNX Runtime INT8, widths 9/19/38/76 took 1.8x the time of 8/16/32/72, x1.4 per MAC (prune_widths.md)."""
    odd = sorted({w for w in after if w % align})
    if not odd or any(w % align for w in before):
        return None
    return (f"conv widths {', '.join(map(str, odd))} are not multiples of {align}; in ONNX Runtime INT8 such widths ran "
            f"x1.4 slower per MAC than aligned ones (resnet9s: 9/19/38/76 took 1.8x the time of 8/16/32/72, "
            f"benchmarks/results/prune_widths.md); round_to={align} keeps every width of {NARROW * align} or more a multiple "
            f"(narrower layers are not rounded)")
