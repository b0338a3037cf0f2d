"""The evidence stored beside every figure: machine, CPU, library versions, threads."""

from __future__ import annotations

import os
import platform
from importlib import metadata


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or platform's answer elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags(wanted: tuple[str, ...] = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "avx512_bf16", "neon")) -> list[str]:
    """The ISA features that decide which kernels run (vector width, INT8 dot products)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags") or line.startswith("Features"):
                    have = set(line.split(":", 1)[1].split())
                    return [w for w in wanted if w in have]
    except OSError:
        pass
    return []


def versions(packages: tuple[str, ...] = ("torch", "numpy", "onnx", "onnxruntime", "openvino", "ai-edge-litert", "torch-pruning")) -> dict[str, str]:
    """Installed versions of the packages that change figures (absent ones are left out)."""
    out = {}
    for p in packages:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            continue
    return out


def machine_evidence(threads: int | None = None) -> dict:
    """Everything needed to judge whether two figures are comparable."""
    ev = {"cpu": cpu_model(), "cpu_flags": cpu_flags(), "logical_cpus": os.cpu_count(),
          "python": platform.python_version(), "platform": platform.platform(), "versions": versions()}
    try:
        import torch

        ev["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    if threads is not None:
        ev["threads"] = threads
    try:
        ev["load_average"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    return ev
