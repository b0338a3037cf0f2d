"""Measure this host and write its profile: peak FP32/FP16/INT8 throughput (ONNX Runtime MatMul
micro-benchmarks), memory bandwidth (a large numpy copy), cores, clock, RAM, cache, storage.

Peaks are measured on one thread and multiplied by the core count: the cores may be shared
(on the reference machine a training run holds the other core), so an all-core measurement
would describe the neighbours, not the chip. Power cannot be read here (no RAPL counters),
so it is carried over from the existing host profile, where it is marked estimated.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np

from edgemap.core.atomic import write_text
from edgemap.core.evidence import cpu_flags, cpu_model
from edgemap.devices.profile import Calibration, DeviceProfile, load_profile
from edgemap.errors import EdgemapError

MATMUL_N = 512  # 2*512^3 = 268 M ops: ~1-3 ms per run on one modern core, far above dispatch cost
COPY_BYTES = 256 * 2**20  # far beyond any last-level cache, so the copy measures DRAM


def _matmul_model(dtype: str) -> bytes:
    """A one-node ONNX model: MatMul (fp32/fp16) or MatMulInteger (uint8 x int8 -> int32)."""
    from onnx import TensorProto, helper

    n = MATMUL_N
    elem = {"fp32": TensorProto.FLOAT, "fp16": TensorProto.FLOAT16, "int8": TensorProto.UINT8}[dtype]
    w_elem = TensorProto.INT8 if dtype == "int8" else elem
    op = "MatMulInteger" if dtype == "int8" else "MatMul"
    out_elem = TensorProto.INT32 if dtype == "int8" else elem
    graph = helper.make_graph([helper.make_node(op, ["a", "b"], ["c"])], "peak",
                              [helper.make_tensor_value_info("a", elem, [n, n]), helper.make_tensor_value_info("b", w_elem, [n, n])],
                              [helper.make_tensor_value_info("c", out_elem, [n, n])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()


def peak_ops(dtype: str, threads: int = 1, runs: int = 15) -> float:
    """Best observed ops/s (1 MAC = 2 ops) of an n x n x n matrix product in ONNX Runtime."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = threads, 1, 3
    sess = ort.InferenceSession(_matmul_model(dtype), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    np_dtype = {"fp32": np.float32, "fp16": np.float16}.get(dtype)
    if np_dtype is None:
        feeds = {"a": rng.integers(0, 255, (MATMUL_N,) * 2, dtype=np.uint8), "b": rng.integers(-127, 127, (MATMUL_N,) * 2, dtype=np.int8)}
    else:
        feeds = {k: rng.standard_normal((MATMUL_N,) * 2).astype(np_dtype) for k in "ab"}
    sess.run(None, feeds)
    best = min(_timed(lambda: sess.run(None, feeds)) for _ in range(runs))
    return 2.0 * MATMUL_N**3 / best


def memory_bandwidth(runs: int = 5) -> float:
    """Best observed bytes/s of a large array copy (read + write counted)."""
    src = np.ones(COPY_BYTES // 8)
    dst = np.empty_like(src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(runs))
    return 2.0 * COPY_BYTES / best


def _timed(fn) -> float:  # noqa: ANN001 - any callable
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def host_facts() -> dict:
    """Cores, clock, RAM, last-level cache and disk size read from the OS."""
    mhz, ram_kb = 0.0, 0
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("cpu MHz"):
                mhz = max(mhz, float(line.split(":")[1]))
    with open("/proc/meminfo") as f:
        ram_kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    cache = 0
    for idx in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        size = (idx / "size").read_text().strip()
        cache = max(cache, int(size.rstrip("KMG")) * {"K": 2**10, "M": 2**20, "G": 2**30}.get(size[-1], 1))
    return {"cores": os.cpu_count() or 1, "clock_hz": mhz * 1e6, "ram_bytes": ram_kb * 1024,
            "cache_bytes": cache, "storage_bytes": shutil.disk_usage("/").total}


def _fig(value: float, basis: str, source: str) -> dict:
    return {"value": float(value), "basis": basis, "source": source}


def calibrate_host(existing: DeviceProfile | None = None) -> DeviceProfile:
    """Measure this machine and return its profile; power and calibration carry over from `existing`."""
    facts, flags = host_facts(), cpu_flags(("avx512f", "avx512_vnni", "avx_vnni", "avx512_fp16", "amx_tile", "neon"))
    cores = facts["cores"]
    peaks = {d: peak_ops(d) for d in ("fp32", "fp16", "int8")}
    how = (f"estimated from a measured single-thread peak (best of 15 ONNX Runtime {{op}} {MATMUL_N}^3 runs, "
           f"edgemap devices calibrate-host) x {cores} cores; all-core scaling not measured: the cores are shared")
    native = ["fp32", "int8"] + (["fp16"] if "avx512_fp16" in flags else [])
    unit = {"name": "cpu", "type": "cpu", "cores": cores,
            "clock_hz": _fig(facts["clock_hz"], "measured", "/proc/cpuinfo 'cpu MHz' (nominal; turbo not visible)"),
            "peak_ops": {d: _fig(v * cores, "estimated", how.format(op="MatMulInteger" if d == "int8" else f"{d} MatMul"))
                         for d, v in peaks.items()},
            "dtypes": native}
    old_unit = existing.unit("cpu") if existing and any(u.name == "cpu" for u in existing.compute_units) else None
    if old_unit is not None and old_unit.calibration is not None:
        unit["calibration"] = old_unit.calibration.model_dump()
    memory = {"ram_bytes": _fig(facts["ram_bytes"], "measured", "/proc/meminfo MemTotal"),
              "bandwidth_bytes_per_s": _fig(memory_bandwidth(), "measured",
                                            f"measured: best of 5 numpy copies of {COPY_BYTES >> 20} MiB, read+write, one thread"),
              "cache_bytes": _fig(facts["cache_bytes"], "measured", "/sys/devices/system/cpu/cpu0/cache (last level)"),
              "storage_bytes": _fig(facts["storage_bytes"], "measured", "size of the root file system")}
    power = existing.power.model_dump() if existing else {
        "idle_w": _fig(2.0, "estimated", "no RAPL counters readable; assumed share of a server socket's idle power"),
        "active_w": _fig(10.0, "estimated", "no RAPL counters readable; assumed share of a server socket's TDP")}
    data = {"name": "host", "description": f"this machine: {cpu_model()}, {cores} cores ({', '.join(flags)})",
            "compute_units": [unit], "memory": memory, "power": power, "runtimes": ["onnxruntime", "openvino", "litert", "torch"],
            "formats": ["onnx", "openvino", "tflite", "safetensors"], "notes": existing.notes if existing else ""}
    return DeviceProfile.model_validate(data)


def with_calibration(profile: DeviceProfile, unit: str, calibration: Calibration) -> DeviceProfile:
    """A copy of `profile` whose compute unit `unit` carries `calibration`."""
    units = [u.model_copy(update={"calibration": calibration}) if u.name == unit else u for u in profile.compute_units]
    return profile.model_copy(update={"compute_units": units})


def write_profile(profile: DeviceProfile, path: str | Path, header: str = "") -> Path:
    """Write a profile as YAML (atomically), with an optional comment header."""
    import yaml

    body = yaml.safe_dump(profile.model_dump(mode="json"), sort_keys=False, width=120)
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    write_text(path, comment + body)
    load_profile(path)  # what we write must read back
    return Path(path)


def calibrate_kernels(profile_path: str | Path, budget_s: float = 480.0, threads: tuple[int, ...] = (1, 2),
                      log=print) -> Path:  # noqa: ANN001 - a print-like callable
    """Sample and measure kernels on this host (devices.kernels.campaign) and store the record beside
    the profile, under this CPU's instruction-set tag (records of other instruction sets are kept)."""
    from datetime import datetime, timezone

    import onnxruntime as ort

    from edgemap.core.evidence import machine_evidence
    from edgemap.devices.kernels.campaign import run_campaign
    from edgemap.devices.kernels.ortgraph import DEFAULT_LEVEL
    from edgemap.devices.kernels.store import isa_tag, kernels_path, write_record
    from edgemap.devices.kernels.uncertainty import thread_ratio_error

    if budget_s < 10:
        raise EdgemapError(f"the kernel sampling budget must be at least 10 s, got {budget_s:g}")
    ort.set_default_logger_severity(3)  # the optimiser's notes on removed initializers are not the user's concern
    rec = run_campaign(budget_s, threads=threads, log=log)
    rec |= {"isa": isa_tag(), "date": f"{datetime.now(timezone.utc):%Y-%m-%d}", "level": DEFAULT_LEVEL,
            "evidence": machine_evidence(), "how": "edgemap devices calibrate-host"}
    rec["tie_margins"] = thread_ratio_error(rec)  # the search's tie band (search/estimate_ties.py), held out
    return write_record(kernels_path(profile_path), rec["isa"], rec)


def calibrate_backend(profile_path: str | Path, backend: str, functions: tuple, graphs: int = 120, budget_s: float = 900.0,
                      threads: tuple[int, ...] = (1, 2), log=print, extend: bool = False) -> Path:  # noqa: ANN001 - print-like
    """Measure `graphs` sampled graphs in `backend` (openvino or litert) here and store the record beside the
    profile (NAME.backends.json.gz), under this CPU's instruction-set tag; needs this CPU's ONNX Runtime kernel
    records (the features are ONNX Runtime's kernels and their predicted times). `functions` is (prepare, timer)
    (edgemap.commands.backend_files.campaign_functions). With `extend`, the new graphs (none a duplicate) are
    added to the stored record of the same backend, instruction set and thread counts."""
    from datetime import datetime, timezone

    import onnxruntime as ort

    from edgemap.core.evidence import machine_evidence
    from edgemap.devices.kernels.backend_campaign import run_backend_campaign
    from edgemap.devices.kernels.backends import (BACKENDS, MIN_GRAPHS, backend_isa_tag, backends_path, read_backend_records,
                                                  write_backend_record)
    from edgemap.devices.kernels.store import isa_tag, kernels_path, load_predictor
    from edgemap.devices.kernels.uncertainty import backend_ratio_error

    if backend not in BACKENDS:
        raise EdgemapError(f"unknown backend {backend!r} to calibrate; choose from {', '.join(BACKENDS)}")
    if graphs < MIN_GRAPHS:
        raise EdgemapError(f"--graphs must be at least {MIN_GRAPHS}, got {graphs}")
    loaded = load_predictor(kernels_path(profile_path))
    if loaded is None:
        raise EdgemapError(f"no ONNX Runtime kernel records for this CPU ({isa_tag()}) beside {profile_path}: "
                           "run edgemap devices calibrate-host first")
    ort.set_default_logger_severity(3)
    before = machine_evidence()
    tag = backend_isa_tag(backend)  # OpenVINO capped by ONEDNN_MAX_CPU_ISA runs (and is filed under) that ISA
    old = read_backend_records(backends_path(profile_path)).get(tag, {}).get(backend) if extend else None
    if old is not None and old["threads"] != list(threads):
        raise EdgemapError(f"the stored {backend} record was measured at {old['threads']} threads, not {list(threads)}: "
                           "calibrate it afresh (without --extend)")
    known = old["configs"] if old else []
    rec = run_backend_campaign(backend, graphs, loaded[0], *functions, threads=threads, budget_s=budget_s, log=log,
                               known=known, seed=len(known))
    if old:
        rec |= {"configs": known + rec["configs"], "graphs": old["graphs"] + rec["graphs"], "refused": old["refused"] + rec["refused"],
                "elapsed_s": round(old["elapsed_s"] + rec["elapsed_s"], 1), "earlier_runs": old.get("earlier_runs", []) + [
                    {k: old.get(k) for k in ("date", "elapsed_s")} | {"load_average": old["evidence"].get("load_average")}]}
    if len(rec["configs"]) < MIN_GRAPHS:
        raise EdgemapError(f"only {len(rec['configs'])} sampled graphs could be measured in {backend} "
                           f"({len(rec['refused'])} refused, first: {(rec['refused'] or [{'why': '-'}])[0]['why']})")
    rec |= {"isa": tag, "cpu_isa": isa_tag(), "date": f"{datetime.now(timezone.utc):%Y-%m-%d}", "evidence_before": before,
            "evidence": machine_evidence(), "how": f"edgemap devices calibrate-backend {backend}",
            "ort_records": {k: loaded[1][k] for k in ("date", "elapsed_s")} | {"kernel_samples": len(loaded[1]["kernels"])}}
    rec["tie_margins"] = backend_ratio_error(rec["graphs"])  # the search's tie band for this runtime, held out
    return write_backend_record(backends_path(profile_path), rec["isa"], rec)
