"""`edgemap bench MODEL [MODEL ...]`: latency, throughput, cold start, memory and size, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the `bench` command to the CLI."""

    @app.command("bench")
    def bench_cmd(
        models: List[Path] = typer.Argument(..., help="model files (.onnx, .xml, .tflite, .safetensors)"),
        backend: Optional[str] = typer.Option(None, help="force one backend for every model (default: by suffix)"),
        threads: int = typer.Option(1, help="intra-op threads per engine (0: the engine's default)"),
        runs: int = typer.Option(200, help="timed runs per model at batch 1"),
        warmup: int = typer.Option(20, help="untimed runs first"),
        batch: List[int] = typer.Option([1, 8, 32], "--batch", help="batch sizes for throughput (repeat the option)"),
        cold: bool = typer.Option(True, help="measure cold start and peak memory in a fresh process per model"),
        json_out: Optional[Path] = typer.Option(None, "--json", help="also write the results as JSON here"),
    ) -> None:
        """Benchmark one or more models, interleaved so that their ratios are fair."""
        run_bench(models, backend, threads, runs, warmup, tuple(batch), cold, json_out)


def run_bench(models: list[Path], backend: str | None, threads: int, runs: int, warmup: int,
              batches: tuple[int, ...], cold: bool, json_out: Path | None) -> dict:
    """The body of `edgemap bench`; returns the results dict."""
    from edgemap.core.atomic import write_json
    from edgemap.core.console import table_console
    from edgemap.errors import EdgemapError
    from edgemap.runtime.bench import Candidate, benchmark

    if any(b < 1 for b in batches):
        raise EdgemapError(f"batch sizes must be >= 1, got {list(batches)}")
    result = benchmark([Candidate.of(m, backend) for m in models], threads, runs, warmup, batches, cold)
    if json_out:
        write_json(json_out, result)
    table_console().print(results_table(result))
    from edgemap.results.builders import bench_runs
    from edgemap.results.record import record_run

    record_run(*bench_runs(result))
    return result


def results_table(result: dict):  # noqa: ANN201 - rich Table
    """The benchmark as a rich table: one row per model."""
    from rich.markup import escape
    from rich.table import Table

    ev = result["evidence"]
    table = Table(title=f"edgemap bench: {ev['cpu']}, {result['results'][0]['threads']} thread(s), "
                        f"{result['runs']} runs, interleaved; fastest: {result['fastest_p50']}")
    cols = ["model", "size KiB", "mean ms", "std", "p50", "p90", "p99", "p99/p50"]
    cols += [f"img/s @{b}" for b in result["batches"]] + ["cold start s", "peak RSS MiB"]
    for col in cols:
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in result["results"]:
        lat, cold = r["latency"], r.get("cold_start") or {}
        tput = [r["throughput"].get(str(b)) for b in result["batches"]]
        table.add_row(escape(r["label"]), f"{r['file_bytes'] / 1024:.1f}", *(f"{lat[k]:.3f}" for k in ("mean_ms", "std_ms", "p50_ms", "p90_ms", "p99_ms")),
                      f"{r['p99_over_p50']:.2f}", *(f"{t['images_per_s']:.0f}" if t else "-" for t in tput),
                      f"{cold['cold_start_s']:.3f}" if cold else "-", f"{cold['peak_rss_mib']:.0f}" if cold.get("peak_rss_mib") else "-")
    return table
