"""Compact storage of sparse weights inside a safetensors file: a packed bitmask plus the non-zero values.

A tensor with zeros at fraction s costs (1 - s) * 4 + 1/8 bytes per weight instead of 4, so a
50 %-sparse model's file really shrinks. Sparse tensors are stored as `NAME::mask` (uint8, one
bit per weight, numpy.packbits order) and `NAME::values` (the non-zeros in row-major order);
their shapes are in the file's metadata. Dense tensors are stored unchanged.
"""

from __future__ import annotations

import json

import numpy as np
import torch

MASK, VALUES = "::mask", "::values"
METADATA_KEY = "edgemap_sparse"
MIN_SPARSITY = 0.05  # below this the bitmask costs more than it saves


def encode(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A state dict -> (tensors to save, metadata) with every sufficiently sparse float tensor bit-packed."""
    out: dict[str, torch.Tensor] = {}
    shapes: dict[str, list[int]] = {}
    for name, t in state.items():
        t = t.detach().contiguous()
        zeros = float((t == 0).float().mean()) if t.is_floating_point() and t.numel() >= 64 else 0.0
        if zeros < MIN_SPARSITY:
            out[name] = t.clone()
            continue
        flat = t.flatten()
        nz = flat != 0
        out[name + MASK] = torch.from_numpy(np.packbits(nz.numpy()))
        out[name + VALUES] = flat[nz].clone()
        shapes[name] = list(t.shape)
    return out, {METADATA_KEY: json.dumps(shapes)}


def is_encoded(tensors: dict[str, torch.Tensor]) -> bool:
    """True when a loaded tensor dict holds bit-packed sparse tensors."""
    return any(k.endswith(MASK) for k in tensors)


def decode(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None) -> dict[str, torch.Tensor]:
    """Inverse of encode(): the dense state dict."""
    shapes = json.loads((metadata or {}).get(METADATA_KEY, "{}"))
    state = {k: v for k, v in tensors.items() if not k.endswith((MASK, VALUES))}
    for name, shape in shapes.items():
        n = int(np.prod(shape))
        nz = torch.from_numpy(np.unpackbits(tensors[name + MASK].numpy(), count=n).astype(bool))
        values = tensors[name + VALUES]
        if int(nz.sum()) != values.numel():
            raise ValueError(f"sparse tensor {name}: mask has {int(nz.sum())} non-zeros, values hold {values.numel()}")
        dense = torch.zeros(n, dtype=values.dtype)
        dense[nz] = values
        state[name] = dense.reshape(shape)
    return state
