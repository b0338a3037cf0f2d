"""Kernel-level latency of a model on a named device.

- A device whose own kernel records exist (NAME.kernels.json.gz beside its profile, written by
  `edgemap devices calibrate-host` run on it - the host's are) is predicted by regressors
  fitted on kernels measured there: labelled "measured kernels".
- Any other CPU is predicted on this host and each kernel scaled by the profile's cited figures,
  by what bounds it on the host: its fixed dispatch part by the clock ratio, the rest by the
  per-core peak ratio (compute-bound) or the bandwidth ratio (memory-bound); labelled
  "scaled from the host".
Non-CPU units (GPU, NPU, MCU) are left to the roofline: host CPU kernels say little about them.

For backend openvino or litert the latency is that runtime's whole-call predictor (kernels.backends),
fed with the ONNX Runtime kernels above: on a device with its own backend records (the host's), as
measured there; on another CPU, the host's backend prediction times the ratio of the device's to the
host's ONNX Runtime kernel-level latency (the runtime's own fusions on that CPU are not modelled).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgemap.devices.kernels.predict import KernelLatency, predict_model
from edgemap.devices.kernels.store import SUFFIX, isa_tag, load_predictor, read_records
from edgemap.devices.profile import ComputeUnit, DeviceProfile

HOST = "host"
PARALLEL = 0.8  # assumed speed-up per extra device core (the roofline's default), never measured here


@dataclass
class KernelEstimate:
    """A kernel-level latency and how it was obtained."""

    latency_s: float
    how: str
    rows: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def records_path(name: str) -> Path | None:
    """NAME.kernels.json.gz in the profile directories ($EDGEMAP_DEVICES first, then the shipped ones)."""
    from edgemap.devices.catalogue import search_dirs

    for d in search_dirs():
        if (d / f"{name}{SUFFIX}").is_file():
            return d / f"{name}{SUFFIX}"
    return None


def _own(name: str) -> tuple | None:
    """(predictor, record) fitted on kernels measured on device `name` (this CPU's ISA for the host)."""
    path = records_path(name)
    if path is None:
        return None
    tag = isa_tag() if name == HOST else next(iter(read_records(path)), None)
    return load_predictor(path, tag) if tag else None


def kernel_estimate(model: str | Path, profile: DeviceProfile, unit: ComputeUnit, threads: int,
                    backend: str = "onnxruntime") -> KernelEstimate | None:
    """Kernel-level latency of `model` on `unit` of `profile` in `backend`, or None when there are no records to use."""
    if unit.type != "cpu":
        return None
    if backend != "onnxruntime":
        return _backend_estimate(model, profile, unit, threads, backend)
    own = _own(profile.name)
    if own is not None:
        pred, rec = own
        t = min(threads, max(rec["threads"]))
        kl = predict_model(model, pred, t)
        notes = kl.warnings + ([f"kernels sampled up to {t} thread(s): predicted at {t}, not {threads}"] if t < threads else [])
        how = (f"kernel-level: {len(kl.rows)} kernels of ONNX Runtime's optimised graph, regressors fitted on "
               f"{pred.n_samples} kernels measured on {rec['evidence'].get('cpu', profile.name)} ({rec['isa']}, "
               f"onnxruntime {rec['evidence'].get('versions', {}).get('onnxruntime', '?')}, {rec['date']})")
        if profile.name == HOST:
            notes += _cpu_note(rec)
        return KernelEstimate(kl.total_s, how, kl.rows, notes)
    host = _own(HOST)
    if host is None:
        return None
    return _scaled(model, profile, unit, threads, *host)


def missing_note(name: str) -> str | None:
    """Why device `name` (or the host it is scaled from) has no kernel records to use, when its file holds records of
    other instruction sets only: ONNX Runtime (MLAS) picks its INT8 and FP32 kernels by the CPU's instruction set and
    offers no switch to run another's, so a CPU without the recorded one must be calibrated itself."""
    path = records_path(name) or records_path(HOST)
    if path is None:
        return None
    tags = sorted(read_records(path))
    here = isa_tag()
    if not tags or here in tags:
        return None
    return (f"{path.name} holds kernel records for {', '.join(tags)}; this CPU runs {here} kernels (ONNX Runtime picks "
            f"them by instruction set, with no switch to run others): run edgemap devices calibrate-host on it, which files "
            f"its records under {here}")


def _cpu_note(rec: dict) -> list[str]:
    from edgemap.core.evidence import cpu_model

    here = cpu_model()
    recorded = rec["evidence"].get("cpu", "")
    return [] if here == recorded else [f"kernel records were measured on {recorded!r}, this CPU is {here!r}: "
                                        "run edgemap devices calibrate-host"]


def _scaled(model: str | Path, profile: DeviceProfile, unit: ComputeUnit, threads: int, pred, rec: dict) -> KernelEstimate:  # noqa: ANN001
    """Host kernel predictions scaled to `unit` kernel by kernel (see the module note)."""
    from edgemap.devices.catalogue import resolve

    hprof = resolve(HOST)
    hunit = hprof.unit()
    ht = min(threads, hunit.cores, max(rec["threads"]))
    kl: KernelLatency = predict_model(model, pred, ht)
    speed_h, speed_d = 1 + PARALLEL * (ht - 1), 1 + PARALLEL * (min(threads, unit.cores) - 1)
    clock = hunit.clock_hz.value / max(unit.clock_hz.value, 1.0)
    bw = hprof.memory.bandwidth_bytes_per_s.value / profile.memory.bandwidth_bytes_per_s.value
    emulated = set()
    for r in kl.rows:
        dtype = r.precision if r.precision in unit.peak_ops and r.precision in unit.dtypes else "fp32"
        if dtype != r.precision:
            emulated.add(r.precision)
        h_core = hunit.peak_ops.get(r.precision, hunit.peak_ops["fp32"]).value / hunit.cores
        d_core = unit.peak_ops[dtype].value / unit.cores
        fixed = min(pred.overhead_s(r.key, r.precision, ht), r.predicted_s)
        compute = 2.0 * r.macs / (h_core * speed_h)
        memory = r.bytes_moved / hprof.memory.bandwidth_bytes_per_s.value
        r.bound = "compute" if compute >= memory else "memory"
        work_ratio = (h_core * speed_h) / (d_core * speed_d) if r.bound == "compute" else bw
        if fixed >= r.predicted_s - fixed:
            r.bound = "overhead"
        r.predicted_s = fixed * clock + (r.predicted_s - fixed) * work_ratio
    c0, c1 = pred.call_constants(ht, "int8" if any(r.precision == "int8" for r in kl.rows) else "fp32")
    total = sum(r.predicted_s for r in kl.rows) + (c0 + c1 * len(kl.rows)) * clock
    notes = kl.warnings + [f"{d} is not native on {unit.name}: its kernels scaled as fp32 arithmetic" for d in sorted(emulated)]
    how = (f"kernel-level, scaled from the host: {len(kl.rows)} kernels of ONNX Runtime's optimised graph on this host "
           f"({ht} thread(s)), each scaled by {profile.name}'s cited figures (clock x{1 / clock:.2f} for dispatch, per-core "
           f"peak for compute-bound, bandwidth x{1 / bw:.2f} for memory-bound kernels; {PARALLEL:g} speed-up per extra core "
           f"assumed); {profile.name}'s own runtime may fuse differently; no measurement on {profile.name}")
    return KernelEstimate(max(total, 0.0), how, kl.rows, notes)


def _backend_records(name: str, backend: str):  # noqa: ANN202 - (BackendPredictor, record) or None
    """The backend predictor of device `name` (this CPU's ISA for the host), from NAME.backends.json.gz."""
    from edgemap.devices.kernels.backends import SUFFIX as BSUFFIX, backend_isa_tag, load_backend_predictor, read_backend_records

    path = _beside(name, BSUFFIX)
    if path is None:
        return None
    tag = backend_isa_tag(backend) if name == HOST else next((t for t, r in read_backend_records(path).items() if backend in r), None)
    return load_backend_predictor(path, backend, tag) if tag else None


def _beside(name: str, suffix: str) -> Path | None:
    """NAME+suffix in the profile directories ($EDGEMAP_DEVICES first, then the shipped ones)."""
    from edgemap.devices.catalogue import search_dirs

    return next((d / f"{name}{suffix}" for d in search_dirs() if (d / f"{name}{suffix}").is_file()), None)


def _backend_estimate(model: str | Path, profile: DeviceProfile, unit: ComputeUnit, threads: int,
                      backend: str) -> KernelEstimate | None:
    """OpenVINO / LiteRT latency from the backend's whole-call predictor (see the module note)."""
    from edgemap.devices.kernels.backends import graph_features, kernel_items

    own_name = profile.name if _backend_records(profile.name, backend) else HOST
    loaded, ort = _backend_records(own_name, backend), _own(own_name)
    if loaded is None or ort is None:
        return None
    bpred, brec = loaded
    kl = predict_model(model, ort[0], min(threads, max(ort[1]["threads"])))
    precs = {r.precision for r in kl.rows}
    prec = "int8" if "int8" in precs else "fp16" if "fp16" in precs else "fp32"  # fp16: never sampled, so no line
    t = bpred.threads_for(prec, threads)
    if t is None:
        return None
    if t != kl.threads:
        kl = predict_model(model, ort[0], t)
    latency = bpred.predict(graph_features(kernel_items(kl.rows)), prec, t)
    notes = kl.warnings + ([f"{backend} measured up to {t} thread(s): predicted at {t}, not {threads}"] if t < threads else [])
    notes += _busy_record_note(brec, backend, t)
    how = (f"{backend} whole-call line over {len(kl.rows)} ONNX Runtime kernels, fitted on {bpred.counts[(prec, t)]} "
           f"sampled graphs measured in {backend} on {brec['evidence'].get('cpu', own_name)} ({brec['isa']}, "
           f"{backend} {brec['evidence'].get('versions', {}).get(_DIST.get(backend, backend), '?')}, {brec['date']})")
    if own_name != profile.name:
        dev = kernel_estimate(model, profile, unit, threads)
        host = predict_model(model, ort[0], t).total_s
        if dev is None or host <= 0:
            return None
        latency *= dev.latency_s / host
        how = f"scaled from the host: {how}, times {profile.name}'s / the host's ONNX Runtime kernel-level latency " \
              f"({dev.latency_s / host:.2f}); no measurement on {profile.name}"
        notes += [n for n in dev.notes if n not in notes]  # the same ONNX Runtime kernels: their warnings once
    return KernelEstimate(latency, how, kl.rows, notes)


_DIST = {"litert": "ai-edge-litert", "openvino": "openvino"}


def _busy_record_note(rec: dict, backend: str, threads: int) -> list[str]:
    """A multi-thread line measured while the cores were oversubscribed (load average above twice the logical CPUs:
    a thread often waits for its core) holds for busy cores: LiteRT's 2-thread calls of the same networks ran x1.5 faster in an idle session on the 2-core host here,
    its 1-thread calls within 1 % (benchmarks/results/estimator_backend_attempts_estimator_litert_s3.md)."""
    ev = rec.get("evidence", {})
    load, cpus = (ev.get("load_average") or [0.0])[0], ev.get("logical_cpus") or 0
    if threads < 2 or not cpus or load <= 2 * cpus:
        return []
    return [f"{backend}'s {threads}-thread line was measured at load {load:g} on {cpus} logical CPUs, with the cores "
            f"busy: on idle cores multi-thread calls can be much faster (LiteRT here: x1.5); recalibrate on an idle "
            f"machine (edgemap devices calibrate-backend {backend})"]
