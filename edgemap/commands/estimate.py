"""`edgemap estimate MODEL.onnx --device NAME`: latency, RAM, flash, energy and fit, as a table or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from edgemap.commands.options import DEVICE_OPTION, MODEL_HELP, WEIGHTS_OPTION


def measured_latency(model: Path, threads: int, backend: str = "onnxruntime", runs: int = 100) -> dict:
    """Median and spread of ONNX Runtime's (or OpenVINO's) latency at batch 1 on this host."""
    import numpy as np

    from edgemap.runtime.latency import measure_interleaved
    from edgemap.runtime.onnxruntime_backend import OrtSession
    from edgemap.runtime.registry import load_session

    opened = OrtSession(model, threads=threads, providers=["CPUExecutionProvider"]) if backend == "onnxruntime" \
        else load_session(backend, model, threads)
    with opened as sess:
        spec = sess.inputs()[0]
        shape = tuple(1 if d is None else d for d in spec.shape)
        x = np.random.default_rng(0).standard_normal(shape).astype(spec.dtype)
        return measure_interleaved({"m": lambda: sess.run(x)}, runs=runs, warmup=10)["m"]


def print_estimate(est, layers: bool) -> None:  # noqa: ANN001 - Estimate
    """Rich table of the figures, then violations and notes."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{est.model} on {est.device}/{est.unit} ({est.precision}, {est.threads} thread(s), "
                        f"{est.macs / 1e6:.2f} M MACs)")
    for col in ("figure", "value", "basis", "how"):
        table.add_column(col, overflow="fold")
    rows = (("latency", est.latency_s, lambda v: f"{v * 1e3:.3f} ms"), ("peak RAM", est.peak_ram_bytes, _kib),
            ("  weights", est.weights_bytes, _kib), ("  activations", est.activations_bytes, _kib),
            ("flash", est.flash_bytes, _kib), ("energy (power x time)", est.energy_j, lambda v: f"{v * 1e3:.4f} mJ"),
            ("energy (op count)", est.energy_ops_j, lambda v: f"{v * 1e3:.4f} mJ"))
    for label, fig, fmt in rows:
        table.add_row(label, fmt(fig.value), fig.basis, fig.how)
    console = Console()
    console.print(table)
    if layers and est.kernels:
        console.print(kernel_table(est.kernels))
    elif layers:
        lt = Table(title="per layer")
        for col in ("layer", "op", "dtype", "MACs", "bytes", "us", "bound"):
            lt.add_column(col)
        for l in est.layers:
            if l.kind != "free":
                lt.add_row(l.name, l.op_type, l.dtype, f"{l.macs:,}", f"{l.bytes_moved:,}", f"{l.latency_s * 1e6:.1f}", l.bound)
        console.print(lt)
    console.print("fits" if est.fits else "does NOT fit:\n  " + "\n  ".join(est.violations))
    for note in est.notes:
        console.print(f"note: {note}")


def kernel_table(rows: list):  # noqa: ANN201 - rich Table of kernels.predict.KernelRow
    """Per kernel of ONNX Runtime's optimised graph: predicted time and, when profiled here, measured time."""
    from rich.table import Table

    measured = any(r.measured_s is not None for r in rows)
    t = Table(title="per kernel (ONNX Runtime's optimised graph" + (", measured here by its profiler)" if measured else ")"))
    for col in ("kernel", "type", "MACs", "bytes", "predicted us") + (("measured us", "error") if measured else ()) + ("bound",):
        t.add_column(col)
    for r in rows:
        cells = [r.name, r.key, f"{r.macs:,}", f"{r.bytes_moved:,}", f"{r.predicted_s * 1e6:.1f}"]
        if measured:
            m = r.measured_s
            cells += [f"{m * 1e6:.1f}", f"{100 * (r.predicted_s / m - 1):+.0f} %"] if m else ["-", "-"]
        t.add_row(*cells, r.bound)
    total_p = sum(r.predicted_s for r in rows)
    if measured:
        total_m = sum(r.measured_s or 0.0 for r in rows)
        t.add_row("sum", "", "", "", f"{total_p * 1e6:.1f}", f"{total_m * 1e6:.1f}", f"{100 * (total_p / total_m - 1):+.0f} %", "")
    else:
        t.add_row("sum", "", "", "", f"{total_p * 1e6:.1f}", "")
    return t


def measure_kernels(model: Path, rows: list, threads: int) -> None:
    """Profile the model here and put each kernel's measured time beside its prediction (same optimised graph)."""
    from edgemap.devices.kernels.profiling import profile_model
    from edgemap.errors import EdgemapError

    prof = profile_model(model, threads, runs=50, warmup=10)
    if [k.op for k in prof.kernels] != [r.op for r in rows]:
        raise EdgemapError(f"{model}: ONNX Runtime optimised the graph differently for profiling; cannot pair kernels")
    for r, s in zip(rows, prof.kernel_s):
        r.measured_s = s


def _record(est, model: Path, measured: dict | None) -> None:  # noqa: ANN001 - Estimate
    """Record the estimate: every figure labelled estimated (or measured where it was), --measure's latency measured."""
    from edgemap.core.evidence import machine_evidence
    from edgemap.results.builders import estimate_run
    from edgemap.results.record import record_run

    record_run(estimate_run(est.to_dict(), model, measured, machine_evidence(est.threads)))


def _kib(v: float) -> str:
    return f"{v / 1024:.1f} KiB"


def register(app: typer.Typer) -> None:
    """Add the `estimate` command to the CLI."""

    @app.command("estimate")
    def estimate_cmd(
        model: Path = typer.Argument(..., help="ONNX model (FP32, FP16 or QDQ INT8), or any model source: " + MODEL_HELP),
        weights: Optional[Path] = WEIGHTS_OPTION,
        device: str = DEVICE_OPTION,
        precision: Optional[str] = typer.Option(None, help="estimate as if converted to fp32/fp16/int8 (default: as stored)"),
        unit: Optional[str] = typer.Option(None, help="compute unit (default: first one that runs the model's data types)"),
        threads: Optional[int] = typer.Option(None, help="threads (default: all cores of the unit)"),
        batch: int = typer.Option(1, help="batch size for symbolic batch axes"),
        as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
        layers: bool = typer.Option(False, "--layers", help="also show the per-kernel (else per-layer) breakdown; "
                                                            "with --measure, measured beside predicted per kernel"),
        measure: bool = typer.Option(False, "--measure", help="also measure the latency here (host profile only; "
                                                               "ONNX Runtime, or OpenVINO with --backend openvino)"),
        backend: str = typer.Option("onnxruntime", help="runtime to estimate the latency for: onnxruntime, openvino "
                                                        "or litert (the last two once calibrated: edgemap devices calibrate-backend)"),
    ) -> None:
        """Estimate latency, peak RAM, flash and energy of an ONNX model on a device, and whether it fits."""
        from edgemap.devices.catalogue import resolve
        from edgemap.devices.estimate import estimate
        from edgemap.errors import EdgemapError

        import tempfile

        from edgemap.pipeline.sources import onnx_of

        prof = resolve(device)
        tmp = tempfile.TemporaryDirectory(prefix="edgemap-estimate-")
        given = model  # what the run is about: the file the user named, not the temporary export
        model = onnx_of(model, weights, tmp.name)  # a checkpoint, .pt2 or entry point is exported first
        est = estimate(model, prof, precision=precision, unit=unit, threads=threads, batch=batch, backend=backend)
        measured = None
        if measure:
            if prof.name != "host":
                raise EdgemapError("--measure runs the model here, so it needs --device host")
            if backend == "litert":
                raise EdgemapError("--measure runs the ONNX model here, and LiteRT runs .tflite files: convert it first "
                                   "(edgemap convert --to litert) and time that (edgemap bench)")
            measured = measured_latency(model, est.threads, backend)
            if layers and est.kernels and backend == "onnxruntime":  # the rows are ONNX Runtime's kernels
                measure_kernels(model, est.kernels, est.threads)
        _record(est, given if Path(given).exists() else model, measured)
        if as_json:
            d = est.to_dict(with_layers=layers)
            if measured:
                d["measured_latency"] = {"basis": "measured", **measured}
            typer.echo(json.dumps(d, indent=2))
            return
        print_estimate(est, layers)
        if measured:
            typer.echo(f"measured latency ({'ONNX Runtime' if backend == 'onnxruntime' else backend}, here): median {measured['p50_ms']:.3f} ms, "
                       f"p90 {measured['p90_ms']:.3f} ms over {measured['n']} runs")
