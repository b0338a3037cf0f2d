"""Energy per inference, modelled two ways (no power counters are readable on the reference host).

1. Board power x time: (idle + (active - idle) x busy cores / cores) x latency. Includes static
   power; as good as the profile's power figures and the latency estimate.
2. Operation count: MACs x energy per MAC + bytes moved x energy per byte, with the 45 nm,
   0.9 V figures of M. Horowitz, "Computing's energy problem (and what we can do about it)",
   ISSCC 2014, doi:10.1109/ISSCC.2014.6757323. Newer processes are several times cheaper,
   so read it as a relative figure: it shows what INT8 arithmetic and staying on chip save.
"""

from __future__ import annotations

from edgemap.devices.graph import GraphCost
from edgemap.devices.profile import ComputeUnit, DeviceProfile

HOROWITZ_SOURCE = "Horowitz, 'Computing's energy problem', ISSCC 2014 (45 nm, 0.9 V)"
# pJ per operation (Horowitz 2014, table of arithmetic energies)
ADD_PJ = {"int8": 0.03, "int32": 0.1, "fp16": 0.4, "fp32": 0.9}
MULT_PJ = {"int8": 0.2, "int32": 3.1, "fp16": 1.1, "fp32": 3.7}
# pJ per 64-bit access (Horowitz 2014): 8/32 KB and 1 MB SRAM caches, DRAM 1.3-2.6 nJ (low end used)
SRAM_64B_PJ = {8 * 2**10: 10.0, 32 * 2**10: 20.0, 2**20: 100.0}
DRAM_64B_PJ = 1300.0


def mac_pj(dtype: str) -> float:
    """Energy of one multiply-accumulate: an INT8 product accumulates in 32 bits, floats in their own width."""
    if dtype == "int8":
        return MULT_PJ["int8"] + ADD_PJ["int32"]
    return MULT_PJ[dtype] + ADD_PJ[dtype]


def byte_pj(working_set: int, cache_bytes: float) -> tuple[float, str]:
    """Energy per byte moved: the smallest SRAM level that holds the working set, else DRAM."""
    if working_set <= cache_bytes:
        for size, pj in sorted(SRAM_64B_PJ.items()):
            if working_set <= size:
                return pj / 8, f"on-chip SRAM (<= {size >> 10} KB)"
        return SRAM_64B_PJ[2**20] / 8, "on-chip SRAM/cache (1 MB figure)"
    return DRAM_64B_PJ / 8, "DRAM"


def ops_energy_j(cost: GraphCost, unit: ComputeUnit, cache_bytes: float) -> tuple[float, str]:
    """Joules of arithmetic + data movement for one inference, and where the data was assumed to live."""
    working_set = cost.weight_bytes + cost.peak_activation_bytes
    per_byte, where = byte_pj(working_set, cache_bytes)
    pj = 0.0
    for layer in cost.layers:
        dtype = layer.dtype if (layer.dtype in unit.dtypes or layer.dtype == "fp32") else "fp32"
        pj += layer.macs * mac_pj(dtype) + layer.bytes_moved * per_byte
    return pj * 1e-12, where


def board_power_w(profile: DeviceProfile, unit: ComputeUnit, threads: int) -> float:
    """Board power with `threads` of the unit's cores busy (linear between idle and all-busy)."""
    idle, active = profile.power.idle_w.value, profile.power.active_w.value
    return idle + (active - idle) * min(threads, unit.cores) / unit.cores
