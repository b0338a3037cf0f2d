"""Estimates for (ONNX model, device profile): latency, peak RAM, flash, energy, and whether it fits.

Every figure says whether it was measured (read off the file) or estimated (modelled), and how.
The search calls `estimate(path, profile, precision=...)`, or `estimate_cost(analyse(path), ...)`
to reuse one graph analysis across many devices.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from edgemap.devices import energy, roofline
from edgemap.devices.graph import GraphCost, Layer, analyse
from edgemap.devices.profile import DeviceProfile
from edgemap.errors import EdgemapError

ELEM_BYTES = {"int8": 1, "fp16": 2, "fp32": 4}
LATENCY_BACKENDS = ("onnxruntime", "openvino", "litert")  # runtimes whose CPU latency estimate() can predict
# Used when neither the unit nor the host profile has a calibration: plain roofline, 20 us per layer.
DEFAULT_PARAMS = roofline.Params(conv=0.5, depthwise=0.1, gemm=0.3, memory=1.0, per_layer_s=20e-6,
                                 per_thread_layer_s=0.0, parallel_efficiency=0.8)


@dataclass(frozen=True)
class Figure:
    """A value with its unit and provenance: basis is 'measured' or 'estimated'."""

    value: float
    unit: str
    basis: str
    how: str


@dataclass(frozen=True)
class LayerEstimate:
    """One layer's estimated time and what bounds it (compute, memory or overhead)."""

    name: str
    op_type: str
    kind: str
    dtype: str
    macs: int
    bytes_moved: int
    latency_s: float
    bound: str


@dataclass
class Estimate:
    """What a model costs on a device; `violations` lists why it does not fit (empty: it fits)."""

    model: str
    device: str
    unit: str
    precision: str
    threads: int
    macs: int
    latency_s: Figure
    peak_ram_bytes: Figure
    weights_bytes: Figure
    activations_bytes: Figure
    flash_bytes: Figure
    energy_j: Figure
    energy_ops_j: Figure
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    layers: list[LayerEstimate] = field(default_factory=list)
    kernels: list = field(default_factory=list)  # kernels.predict.KernelRow, when the latency is kernel-level
    backend: str = "onnxruntime"  # the runtime the latency is for

    @property
    def fits(self) -> bool:
        """True when no constraint of the device is violated."""
        return not self.violations

    def to_dict(self, with_layers: bool = False) -> dict:
        """JSON-ready dict (layers left out unless asked for)."""
        d = asdict(self)
        d["fits"] = self.fits
        if not with_layers:
            d.pop("layers")
            d.pop("kernels")
        return d


def estimate(onnx_path: str | Path, profile: DeviceProfile | str, precision: str | None = None, unit: str | None = None,
             threads: int | None = None, batch: int = 1, kernel_level: bool = True, backend: str = "onnxruntime") -> Estimate:
    """Estimate an ONNX model on a device (a profile, or its name/path); `precision` (fp32/fp16/int8)
    re-types the graph as if converted; `backend` is the runtime that will run it (onnxruntime, openvino,
    litert). See `estimate_cost` for when the latency is kernel-level."""
    if not isinstance(profile, DeviceProfile):
        from edgemap.devices.catalogue import resolve

        profile = resolve(profile)
    return estimate_cost(analyse(onnx_path, batch), profile, precision, unit, threads, kernel_level, backend)


def _kernel_latency(est: Estimate, cost: GraphCost, profile: DeviceProfile, converted: bool, backend: str) -> None:
    """Replace the roofline latency (and the energy built on it) by the kernel-level one, when there is one."""
    import importlib.util

    if cost.batch != 1 or converted:
        est.notes.append("latency from the per-layer roofline: kernel-level prediction needs the model as stored, at batch 1")
        return

    if importlib.util.find_spec("sklearn") is None or importlib.util.find_spec("scipy") is None:
        est.notes.append("latency from the per-layer roofline: kernel-level prediction needs scikit-learn and scipy "
                         "(requirements/host.txt)")
        return
    from edgemap.devices.kernels.device import kernel_estimate

    ke = kernel_estimate(Path(cost.path), profile, profile.unit(est.unit), est.threads, backend)
    if ke is None:
        est.notes.append("latency from the per-layer roofline: " + _no_kernel_reason(profile, est.unit, backend))
        return
    power = est.energy_j.value / est.latency_s.value if est.latency_s.value else 0.0
    est.latency_s = Figure(ke.latency_s, "s", "estimated", ke.how)
    est.energy_j = Figure(power * ke.latency_s, "J", "estimated", f"{power:.2f} W board power (profile) x estimated latency")
    est.kernels = ke.rows
    est.notes.extend(ke.notes)


def _no_kernel_reason(profile: DeviceProfile, unit: str, backend: str) -> str:
    """Why no kernel-level latency: records of another instruction set only, or none for this device or the host."""
    from edgemap.devices.kernels.device import missing_note

    why = missing_note(profile.name) if profile.unit(unit).type == "cpu" else None
    if why:
        return why + ("" if backend == "onnxruntime" else f", then edgemap devices calibrate-backend {backend}")
    if backend == "onnxruntime":
        return "no kernel records for this device or the host (edgemap devices calibrate-host)"
    return (f"no {backend} records for this device or the host at this precision "
            f"(edgemap devices calibrate-backend {backend})")


def estimate_cost(cost: GraphCost, profile: DeviceProfile, precision: str | None = None, unit: str | None = None,
                  threads: int | None = None, kernel_level: bool = True, backend: str = "onnxruntime") -> Estimate:
    """Estimate from an already analysed graph (see `graph.analyse`).

    The latency is kernel-level (predicted on ONNX Runtime's optimised graph of the analysed file,
    see devices.kernels) when kernel records exist for the device or the host, the model is
    estimated as stored and at batch 1; otherwise it is the per-layer roofline, and a note says why.
    For backend openvino or litert it is that runtime's whole-call predictor fed with those kernels
    (kernels.backends), when it was calibrated (edgemap devices calibrate-backend).
    """
    if backend not in LATENCY_BACKENDS:
        raise EdgemapError(f"unknown backend {backend!r} to estimate for; choose from {', '.join(LATENCY_BACKENDS)}")
    converted = precision is not None and precision != cost.precision
    if precision is not None:
        cost = with_precision(cost, precision)
    cu = profile.unit(unit) if unit else _best_unit(profile, cost)
    threads = cu.cores if threads is None else threads
    if threads < 1:
        raise EdgemapError(f"threads must be at least 1, got {threads}")
    params, cal_how = _params(profile, cu)
    bw = profile.memory.bandwidth_bytes_per_s.value
    timed = [(layer, *roofline.layer_time(layer, cu, bw, params, threads)) for layer in cost.layers]
    latency = sum(t for _, t, _ in timed)
    weights_ram = 0 if profile.memory.weights_in_flash else cost.weight_bytes
    ram = weights_ram + cost.peak_activation_bytes
    ops_j, where = energy.ops_energy_j(cost, cu, profile.memory.cache_bytes.value)
    power = energy.board_power_w(profile, cu, threads)
    label = "converted" if converted else "in the file"
    est = Estimate(
        model=Path(cost.path).name, device=profile.name, unit=cu.name, precision=cost.precision, threads=threads,
        macs=cost.macs,
        latency_s=Figure(latency, "s", "estimated", f"per-layer roofline on {threads} thread(s); {cal_how}"),
        peak_ram_bytes=Figure(ram, "B", "estimated", "weights + largest set of live activations in topological order"
                              + ("; weights stay in flash" if profile.memory.weights_in_flash else "")
                              + "; the runtime's own memory not included"),
        weights_bytes=Figure(cost.weight_bytes, "B", "estimated" if converted else "measured", f"initializers {label}"),
        activations_bytes=Figure(cost.peak_activation_bytes, "B", "estimated", "peak live activations from the graph"),
        flash_bytes=Figure(cost.file_bytes, "B", "estimated" if converted else "measured",
                           "file size after re-typing the weights" if converted else "size of the ONNX file"),
        energy_j=Figure(power * latency, "J", "estimated", f"{power:.2f} W board power (profile) x estimated latency"),
        energy_ops_j=Figure(ops_j, "J", "estimated", f"{energy.HOROWITZ_SOURCE}: MACs + bytes from {where}"),
        layers=[LayerEstimate(l.name, l.op_type, l.kind, l.dtype, l.macs, l.bytes_moved, t, b) for l, t, b in timed],
        notes=list(cost.warnings), backend=backend)
    _check_fit(est, cost, profile, cu)
    if kernel_level:
        _kernel_latency(est, cost, profile, converted, backend)
    return est


def _best_unit(profile: DeviceProfile, cost: GraphCost):  # noqa: ANN202 - ComputeUnit
    """The first unit that computes all of the model's data types natively, else the first unit."""
    for u in profile.compute_units:
        if all(d in u.dtypes for d in cost.dtypes):
            return u
    return profile.compute_units[0]


def _params(profile: DeviceProfile, cu) -> tuple[roofline.Params, str]:  # noqa: ANN001 - ComputeUnit
    """The unit's calibration, else the host's compute factors (memory factor capped at 1, per-layer cost scaled by clock)."""
    if cu.calibration is not None:
        return roofline.params_of(cu, DEFAULT_PARAMS), f"efficiency factors {cu.calibration.basis}: {cu.calibration.source}"
    from edgemap.devices.catalogue import SHIPPED_DIR
    from edgemap.devices.profile import load_profile

    host_file = SHIPPED_DIR / "host.yaml"
    host = load_profile(host_file) if host_file.is_file() else None
    hcu = host.compute_units[0] if host else None
    if hcu is None or hcu.calibration is None:
        return DEFAULT_PARAMS, "uncalibrated default efficiency factors"
    p = roofline.params_of(hcu, DEFAULT_PARAMS)
    scale = hcu.clock_hz.value / max(cu.clock_hz.value, 1.0)
    # thread scaling is not borrowed: the host's cores are shared, a device's are assumed free
    p = replace(p, memory=min(p.memory, 1.0), per_layer_s=p.per_layer_s * scale, per_thread_layer_s=0.0,
                parallel_efficiency=DEFAULT_PARAMS.parallel_efficiency)
    return p, ("efficiency factors borrowed from the host calibration (not measured on this device); "
               f"thread speed-up assumed {DEFAULT_PARAMS.parallel_efficiency:g} per extra core")


def _check_fit(est: Estimate, cost: GraphCost, profile: DeviceProfile, cu) -> None:  # noqa: ANN001
    """Fill `violations` (RAM, flash, data types, file format) and `notes` (emulated data types)."""
    def mib(b: float) -> str:
        return f"{b / 2**20:.2f} MiB"

    ram, flash = profile.memory.ram_bytes.value, profile.memory.storage_bytes.value
    if est.peak_ram_bytes.value > ram:
        est.violations.append(f"RAM: needs {mib(est.peak_ram_bytes.value)}, {profile.name} has {mib(ram)}")
    if est.flash_bytes.value > flash:
        est.violations.append(f"flash: model file is {mib(est.flash_bytes.value)}, {profile.name} has {mib(flash)}")
    for d in cost.dtypes:
        if d in cu.dtypes:
            continue
        if cu.type in ("cpu", "gpu") and "fp32" in cu.dtypes:
            est.notes.append(f"{d} is not native on {cu.name}: estimated as fp32 arithmetic plus conversions")
        else:
            est.violations.append(f"data type: {cu.name} ({cu.type}) does not compute {d}; it computes {', '.join(cu.dtypes)}")
    if "onnx" not in profile.formats:
        est.violations.append(f"format: {profile.name}'s runtimes ({', '.join(profile.runtimes)}) load "
                              f"{', '.join(profile.formats)}, not onnx (convert the model first)")


def with_precision(cost: GraphCost, precision: str) -> GraphCost:
    """The graph as if its weights, activations and arithmetic were converted to `precision`."""
    if precision not in ELEM_BYTES:
        raise EdgemapError(f"unknown precision {precision!r}; choose from {', '.join(ELEM_BYTES)}")
    if precision == cost.precision:
        return cost
    ratio = ELEM_BYTES[precision] / ELEM_BYTES[cost.precision]
    layers = tuple(_retype(layer, precision) for layer in cost.layers)
    weights = int(cost.weight_bytes * ratio)  # quantization scales are few; the ratio is close enough
    return replace(cost, layers=layers, weight_bytes=weights, peak_activation_bytes=int(cost.peak_activation_bytes * ratio),
                   file_bytes=max(0, cost.file_bytes - cost.weight_bytes) + weights)


def _retype(layer: Layer, precision: str) -> Layer:
    if layer.kind == "free":
        return layer
    r = ELEM_BYTES[precision] / ELEM_BYTES[layer.dtype]
    return replace(layer, dtype=precision, bytes_moved=int(layer.bytes_moved * r), weight_bytes=int(layer.weight_bytes * r))
