"""The before -> after report of a pass that turns one ONNX file into another."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from edgemap.compress.context import PassContext
from edgemap.compress.measure import latency_pair, onnx_accuracy, onnx_latency
from edgemap.compress.report import CompressionReport, file_size, timed
from edgemap.core.passes import config_to_dict


def onnx_parameters(path: str | Path) -> int:
    """Number of stored weight values (initializer elements) of an ONNX file."""
    import numpy as np
    import onnx

    model = onnx.load(str(path))
    return int(sum(int(np.prod(t.dims)) for t in model.graph.initializer))


def onnx_report(technique: str, cfg: Any, source: str | Path, out: str | Path, ctx: PassContext,
                work: Callable[[CompressionReport], None]) -> CompressionReport:
    """Run `work(report)` (which writes `out`), timed, then measure size, accuracy and ORT batch-1 latency."""
    report = CompressionReport(technique, config_to_dict(cfg))
    with timed(report):
        work(report)
    report.output = str(out)
    report.file_bytes = (file_size(source), file_size(out))
    report.params = (onnx_parameters(source), onnx_parameters(out))
    measure_onnx_pair(report, source, out, ctx)
    return report


def measure_onnx_pair(report: CompressionReport, source: str | Path, out: str | Path, ctx: PassContext) -> None:
    """Fill the report's accuracy (on ctx.eval_set, fed as ctx.norm says) and ONNX Runtime batch-1 latency of
    `source` before and `out` after."""
    if ctx.eval_set is not None:
        report.accuracy = {"before": onnx_accuracy(source, ctx.eval_set, ctx.norm),
                           "after": onnx_accuracy(out, ctx.eval_set, ctx.norm)}
    if ctx.latency_runs:
        lat = onnx_latency({"before": source, "after": out}, ctx.input_shape, ctx.latency_runs, threads=ctx.threads)
        report.latency = {**latency_pair(lat["before"], lat["after"]), "runtime": "onnxruntime CPU, batch 1"}
