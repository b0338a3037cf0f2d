"""Batched augmentation on normalised NCHW tensors: random crop after padding, horizontal flip."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop_flip(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Pad by `pad` (reflect), crop back to the original size at a random offset per image, flip half.

    Offsets are grouped so the cost is one slice per distinct offset, not per image.
    """
    n, _c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    out = torch.empty_like(x)
    keys = dy * (2 * pad + 1) + dx
    for key in keys.unique().tolist():
        idx = (keys == key).nonzero(as_tuple=True)[0]
        oy, ox = divmod(key, 2 * pad + 1)
        out[idx] = padded[idx, :, oy:oy + h, ox:ox + w]
    flip = torch.rand(n, generator=generator) < 0.5
    out[flip] = out[flip].flip(3)
    return out
