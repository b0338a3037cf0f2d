"""`edgemap devices`: list the device catalogue, show one profile, measure this host."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

HOST_HEADER = ("Measured on this machine by: edgemap devices calibrate-host\n"
               "Efficiency factors (calibration) fitted by: .venv/bin/python benchmarks/estimator_validation.py --write-profile")


MIN_BUDGET_S = 10.0


def _si(value: float, unit: str) -> str:
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _bytes(value: float) -> str:
    for scale, prefix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if value >= scale:
            return f"{value / scale:.3g} {prefix}"
    return f"{value:.0f} B"


def list_devices() -> None:
    """Print every visible profile as one table row."""
    from rich.console import Console
    from rich.table import Table

    from edgemap.devices.catalogue import list_profiles

    table = Table(title="edgemap device profiles (edgemap devices show NAME for sources)")
    for col in ("name", "compute", "peak FP32", "peak INT8", "mem BW", "RAM", "storage", "power", "formats"):
        table.add_column(col, no_wrap=col == "name")
    for p in list_profiles():
        u = p.compute_units[0]
        int8 = u.peak_ops.get("int8")
        more = f" +{len(p.compute_units) - 1}" if len(p.compute_units) > 1 else ""
        table.add_row(p.name, f"{u.name}: {u.cores} x {_si(u.clock_hz.value, 'Hz')}{more}", _si(u.peak_ops["fp32"].value, "op/s"),
                      _si(int8.value, "op/s") if int8 else "-", _si(p.memory.bandwidth_bytes_per_s.value, "B/s"),
                      _bytes(p.memory.ram_bytes.value), _bytes(p.memory.storage_bytes.value),
                      f"{p.power.idle_w.value:g}-{p.power.active_w.value:g} W", ", ".join(p.formats))
    Console().print(table)


def show_device(name: str) -> None:
    """Print one profile: every figure with its basis and source."""
    from rich.console import Console
    from rich.table import Table

    from edgemap.devices.catalogue import resolve

    p = resolve(name)
    table = Table(title=f"{p.name}: {p.description}", show_lines=False)
    for col in ("figure", "value", "basis", "source"):
        table.add_column(col, overflow="fold")
    for u in p.compute_units:
        table.add_row(f"{u.name} ({u.type})", f"{u.cores} cores, native {', '.join(u.dtypes)}", "", "")
        table.add_row("  clock", _si(u.clock_hz.value, "Hz"), u.clock_hz.basis, u.clock_hz.source)
        for dtype, fig in u.peak_ops.items():
            table.add_row(f"  peak {dtype}", _si(fig.value, "op/s"), fig.basis, fig.source)
        if u.calibration is not None:
            c = u.calibration
            table.add_row("  efficiency", f"conv {c.conv:.2f}, dw {c.depthwise:.2f}, gemm {c.gemm:.2f}, mem {c.memory:.2f}, "
                          f"int8 x{c.int8:.2f}, {c.per_layer_s * 1e6:.1f} us/layer, parallel {c.parallel_efficiency:.2f}", c.basis, c.source)
    m = p.memory
    for label, fig, fmt in (("RAM", m.ram_bytes, _bytes), ("memory bandwidth", m.bandwidth_bytes_per_s, lambda v: _si(v, "B/s")),
                            ("cache / SRAM", m.cache_bytes, _bytes), ("storage", m.storage_bytes, _bytes),
                            ("idle power", p.power.idle_w, lambda v: f"{v:g} W"), ("active power", p.power.active_w, lambda v: f"{v:g} W")):
        table.add_row(label, fmt(fig.value), fig.basis, fig.source)
    table.add_row("runtimes", ", ".join(p.runtimes), "", f"formats: {', '.join(p.formats)}")
    _kernel_rows(table, p.name)
    console = Console()
    console.print(table)
    if p.notes:
        console.print(p.notes)


def _kernel_rows(table, name: str) -> None:  # noqa: ANN001 - rich Table
    """One row per instruction set with kernel records beside the profile (what kernel-level latency uses)."""
    from edgemap.devices.kernels.device import records_path
    from edgemap.devices.kernels.store import read_records

    path = records_path(name)
    for tag, rec in (read_records(path) if path else {}).items():
        table.add_row(f"kernel records ({tag})", f"{len(rec['kernels'])} kernels from {len(rec['configs'])} sampled graphs",
                      "measured", f"{rec['evidence'].get('cpu')}, onnxruntime {rec['evidence'].get('versions', {}).get('onnxruntime')}, "
                                  f"{rec['date']}, {rec['elapsed_s']} s, {rec['how']} ({path.name})")
    _backend_rows(table, name)


def _backend_rows(table, name: str) -> None:  # noqa: ANN001 - rich Table
    """One row per (instruction set, backend) with whole-call records (what `estimate --backend` uses)."""
    from edgemap.devices.catalogue import search_dirs
    from edgemap.devices.kernels.backends import SUFFIX, read_backend_records

    path = next((d / f"{name}{SUFFIX}" for d in search_dirs() if (d / f"{name}{SUFFIX}").is_file()), None)
    for tag, by_backend in (read_backend_records(path) if path else {}).items():
        for backend, rec in by_backend.items():
            v = rec["evidence"].get("versions", {})
            table.add_row(f"{backend} records ({tag})", f"{len(rec['configs'])} sampled graphs", "measured",
                          f"{rec['evidence'].get('cpu')}, {backend} {v.get('ai-edge-litert' if backend == 'litert' else backend)}, "
                          f"{rec['date']}, {rec['elapsed_s']} s, {rec['how']} ({path.name})")


def calibrate(out: Optional[Path], kernels: bool = True, budget: float = 480.0) -> Path:
    """Measure this host and write (or update) its profile; keeps fitted efficiency factors and power.
    With `kernels`, also sample kernels for `budget` seconds and write NAME.kernels.json.gz beside it."""
    from edgemap.devices.calibrate import calibrate_host, write_profile
    from edgemap.devices.catalogue import ENV_VAR, SHIPPED_DIR, search_dirs
    from edgemap.devices.profile import load_profile
    from edgemap.errors import EdgemapError

    if kernels and budget < MIN_BUDGET_S:
        raise EdgemapError(f"--budget must be at least {MIN_BUDGET_S:g} s for the kernel sampling, got {budget:g}")
    if out is None:
        first = search_dirs()[0]
        out = first / "host.yaml" if first != SHIPPED_DIR else SHIPPED_DIR / "host.yaml"
    existing = load_profile(out) if out.is_file() else None
    if existing is None and (SHIPPED_DIR / "host.yaml").is_file():
        existing = load_profile(SHIPPED_DIR / "host.yaml")
    path = write_profile(calibrate_host(existing), out, HOST_HEADER)
    typer.echo(f"wrote {path} (profiles in ${ENV_VAR} directories shadow the shipped ones)")
    if kernels:
        from edgemap.devices.calibrate import calibrate_kernels

        typer.echo(f"sampling kernels for {budget:g} s ...")
        typer.echo(f"wrote {calibrate_kernels(path, budget, log=typer.echo)}")
    return path


def calibrate_backend_cmd(backend: str, profile: Optional[Path], graphs: int, budget: float, extend: bool = False) -> Path:
    """Write NAME.backends.json.gz beside the host profile (the one `estimate --device host` resolves by default)."""
    from edgemap.commands.backend_files import campaign_functions
    from edgemap.devices.calibrate import calibrate_backend
    from edgemap.devices.kernels.backends import BACKENDS
    from edgemap.devices.kernels.device import records_path
    from edgemap.errors import EdgemapError

    if backend not in BACKENDS:
        raise EdgemapError(f"unknown backend {backend!r} to calibrate; choose from {', '.join(BACKENDS)}")
    if profile is None:
        found = records_path("host")
        if found is None:
            raise EdgemapError("no host kernel records found: run edgemap devices calibrate-host first")
        profile = found.with_name("host.yaml")
    typer.echo(f"measuring up to {graphs} sampled graphs in {backend} (at most {budget:g} s) ...")
    path = calibrate_backend(profile, backend, campaign_functions(backend), graphs, budget, log=typer.echo, extend=extend)
    typer.echo(f"wrote {path}")
    return path


def register(app: typer.Typer) -> None:
    """Add the `devices` command group to the CLI."""
    devices = typer.Typer(help="Device profiles: list, show, measure this host.", invoke_without_command=True)

    @devices.callback()
    def _list(ctx: typer.Context) -> None:
        """List the device profiles (shipped, and those in $EDGEMAP_DEVICES directories)."""
        if ctx.invoked_subcommand is None:
            list_devices()

    @devices.command("show")
    def _show(name: str = typer.Argument(..., help="profile name or path to a profile YAML")) -> None:
        """Show one profile with the source of every figure."""
        show_device(name)

    @devices.command("calibrate-host")
    def _calibrate(out: Optional[Path] = typer.Option(None, help="profile to write (default: host.yaml in the first "
                                                                  "$EDGEMAP_DEVICES directory, else the shipped one)"),
                   kernels: bool = typer.Option(True, help="also sample and measure kernels for the kernel-level "
                                                           "latency predictors (NAME.kernels.json.gz beside the profile)"),
                   budget: float = typer.Option(480.0, help="seconds for the kernel sampling (adaptive rounds included)")) -> None:
        """Measure peak throughput, memory bandwidth and (by default) sampled kernels here; write the host profile."""
        calibrate(out, kernels, budget)

    @devices.command("calibrate-backend")
    def _calibrate_backend(backend: str = typer.Argument(..., help="openvino or litert"),
                           profile: Optional[Path] = typer.Option(None, help="host profile whose kernel records to use and "
                                                                               "beside which to write (default: the host's)"),
                           graphs: int = typer.Option(120, help="sampled graphs to measure (each FP32 and INT8, 1 and 2 threads)"),
                           budget: float = typer.Option(900.0, help="stop sampling after this many seconds"),
                           extend: bool = typer.Option(False, "--extend", help="add the new graphs to the stored record "
                                                                               "instead of replacing it")) -> None:
        """Measure sampled graphs in OpenVINO or LiteRT here: the records behind `estimate --backend`."""
        calibrate_backend_cmd(backend, profile, graphs, budget, extend)

    app.add_typer(devices, name="devices")
