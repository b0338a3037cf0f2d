"""What ONNX Runtime really executes: operator counts of the graph after its own optimisations.

A QDQ model only says "quantize here"; whether the runtime fuses DequantizeLinear -> Conv ->
QuantizeLinear into an integer kernel (QLinearConv) is decided at session creation. We save
the optimised graph (SessionOptions.optimized_model_filepath) and count its integer kernels.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from edgemap.errors import EdgemapError

# Operators that compute on 8-bit integers (ONNX standard and com.microsoft contrib kernels).
INTEGER_OPS = frozenset({
    "QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul", "QGemm", "QLinearAdd", "QLinearMul",
    "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearConcat", "QLinearLeakyRelu", "QLinearSigmoid",
    "QLinearSoftmax", "QLinearReduceMean", "QLinearWhere", "QLinearConvTranspose", "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat", "QAttention", "NhwcQLinearConv", "QLinearSplit",
})
COMPUTE_OPS = frozenset({"Conv", "Gemm", "MatMul", "ConvTranspose", "FusedConv", "FusedGemm", "FusedMatMul",
                         "NchwcConv"})
QUANTIZABLE_OPS = ("Conv", "Gemm", "MatMul", "ConvTranspose")


def load_onnx(onnx_path: str | Path):  # noqa: ANN201 - onnx.ModelProto
    """Load an ONNX file, or raise a one-line EdgemapError saying why it is not one."""
    import onnx

    path = Path(onnx_path)
    if not path.is_file():
        raise EdgemapError(f"{path}: model file not found")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf decode errors and friends
        raise EdgemapError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None


def op_counts(onnx_path: str | Path) -> Counter:
    """Operator type counts of an ONNX file, as written."""
    return Counter(n.op_type for n in load_onnx(onnx_path).graph.node)


def runtime_op_counts(onnx_path: str | Path) -> Counter:
    """Operator type counts of the graph ONNX Runtime (CPU, all optimisations) executes for this model."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="edgemap-ort-") as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.optimized_model_filepath = str(optimized)
        try:
            ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own exception types
            raise EdgemapError(f"{onnx_path}: onnxruntime cannot load this model ({str(exc).splitlines()[0][:300]})") from None
        return op_counts(optimized)


def integer_summary(onnx_path: str | Path) -> dict:
    """Integer kernels vs float compute kernels in the runtime graph, with the full op histogram."""
    counts = runtime_op_counts(onnx_path)
    integer = {k: v for k, v in counts.items() if k in INTEGER_OPS}
    floating = {k: v for k, v in counts.items() if k in COMPUTE_OPS}
    return {"integer_ops": sum(integer.values()), "float_compute_ops": sum(floating.values()),
            "integer_by_type": integer, "float_by_type": floating, "runtime_ops": dict(sorted(counts.items()))}


def require_integer_kernels(onnx_path: str | Path) -> dict:
    """integer_summary(), raising EdgemapError when a 'quantized' model runs no integer kernel at all."""
    summary = integer_summary(onnx_path)
    if summary["integer_ops"] == 0:
        raise EdgemapError(f"{onnx_path}: quantized model runs no integer kernels after ONNX Runtime's optimisations "
                           f"(runtime ops: {summary['runtime_ops']})")
    return summary


def quantizable_nodes(onnx_path: str | Path) -> list[str]:
    """Names of the nodes a quantizer can turn into integer kernels (Conv, Gemm, MatMul), in graph order."""
    model = load_onnx(onnx_path)
    return [n.name or f"<unnamed {n.op_type}>" for n in model.graph.node if n.op_type in QUANTIZABLE_OPS]


def require_quantizable(onnx_path: str | Path) -> list[str]:
    """quantizable_nodes(), raising EdgemapError when there is none (nothing to quantize)."""
    nodes = quantizable_nodes(onnx_path)
    if not nodes:
        counts = op_counts(onnx_path)
        raise EdgemapError(f"{onnx_path}: no quantizable operator (Conv, Gemm, MatMul) in this model; ops: {dict(counts)}")
    return nodes
