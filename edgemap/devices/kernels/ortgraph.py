"""The graph ONNX Runtime really executes: its own optimised model, read node by node.

`optimised_kernels(model)` builds an InferenceSession with the same ONNX Runtime version,
optimisation level and thread count as a measurement would, has it write its optimised graph
(`SessionOptions.optimized_model_filepath`), and returns one `Kernel` per node of it: fusions
(Conv+activation, QDQ -> QLinearConv), layout changes (NCHWc reorders, NHWC transposes) and
leftover Quantize/DequantizeLinear nodes are then exactly what the predictor sees.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from edgemap.devices.kernels.shapes import ShapeMap, Shape, attrs
from edgemap.errors import EdgemapError

LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
          "all": "ORT_ENABLE_ALL"}
DEFAULT_LEVEL = "all"  # what edgemap's OrtSession (and ONNX Runtime by default) runs with
KEPT_ATTRS = ("group", "kernel_shape", "strides", "activation", "channels_last", "transB", "axis", "perm")


@dataclass(frozen=True)
class Kernel:
    """One node of the optimised graph: what runs, on which shapes and element types."""

    name: str
    op: str                     # op type, prefixed with the domain's last part for contrib ops (nchwc.Conv)
    inputs: tuple[Shape, ...]   # data and weight inputs, in node order ('' inputs left out)
    in_types: tuple[str, ...]
    output: Shape
    out_type: str
    attrs: dict = field(default_factory=dict, compare=False)
    const_inputs: tuple[bool, ...] = ()  # which inputs are initializers (weights, scales)


def session_options(threads: int, level: str = DEFAULT_LEVEL):  # noqa: ANN201 - ort.SessionOptions
    """SessionOptions as edgemap measures with: `threads` intra-op threads, one inter-op thread."""
    import onnxruntime as ort

    if level not in LEVELS:
        raise EdgemapError(f"unknown optimisation level {level!r}; choose from {', '.join(LEVELS)}")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[level])
    if threads:
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    return opts


def optimise(model: str | Path | bytes, out: Path, threads: int, level: str = DEFAULT_LEVEL) -> Path:
    """Have ONNX Runtime write its optimised version of `model` (a path or serialized bytes) to `out`."""
    import onnxruntime as ort

    opts = session_options(threads, level)
    opts.optimized_model_filepath = str(out)
    src = model if isinstance(model, bytes) else str(model)
    try:
        ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise EdgemapError(f"onnxruntime cannot load the model ({str(exc).strip().splitlines()[0][:200]})") from None
    return out


def read_kernels(optimised: str | Path) -> tuple[list[Kernel], list[str]]:
    """Kernels of an optimised ONNX file (topological order) and the shape rules' warnings."""
    import onnx

    graph = onnx.load(str(optimised), load_external_data=False).graph
    shapes = ShapeMap(graph)
    consts = {i.name for i in graph.initializer}
    kernels = []
    for node in graph.node:
        ins = [i for i in node.input if i]
        domain = node.domain.rsplit(".", 1)[-1] if node.domain.startswith("com.microsoft.") else ""
        out = node.output[0]
        kernels.append(Kernel(
            name=node.name, op=f"{domain}.{node.op_type}" if domain else node.op_type,
            inputs=tuple(shapes.shape[i] for i in ins), in_types=tuple(shapes.dtype[i] for i in ins),
            output=shapes.shape[out], out_type=shapes.dtype[out],
            attrs={k: v for k, v in attrs(node).items() if k in KEPT_ATTRS},
            const_inputs=tuple(i in consts for i in ins)))
    return kernels, sorted(set(shapes.warnings))


def optimised_kernels(model: str | Path | bytes, threads: int, level: str = DEFAULT_LEVEL) -> tuple[list[Kernel], list[str]]:
    """Kernels ONNX Runtime executes for `model` at this thread count and optimisation level."""
    with tempfile.TemporaryDirectory() as tmp:
        path = optimise(model, Path(tmp) / "optimised.onnx", threads, level)
        return read_kernels(path)


def file_kernels(model: str | Path, threads: int, level: str = DEFAULT_LEVEL) -> tuple[list[Kernel], list[str]]:
    """`optimised_kernels` of a model file, cached on the file's identity (one session per file, not per device)."""
    p = Path(model)
    if not p.is_file():
        raise EdgemapError(f"{p}: model file not found")
    st = p.stat()
    kernels, warnings = _cached(str(p.resolve()), st.st_mtime_ns, st.st_size, threads, level)
    return list(kernels), list(warnings)


@lru_cache(maxsize=64)
def _cached(path: str, mtime: int, size: int, threads: int, level: str) -> tuple[tuple[Kernel, ...], tuple[str, ...]]:  # noqa: ARG001
    kernels, warnings = optimised_kernels(path, threads, level)
    return tuple(kernels), tuple(warnings)
