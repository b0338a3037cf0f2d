"""Which backends accept an ONNX model, and a clear error naming the operator and layer when one does not.

Each engine is asked itself (onnxruntime builds a session, OpenVINO converts the model and
reports the operators it has no rule for): a hand-kept list of supported operators would drift
from the installed engines.
"""

from __future__ import annotations

import re
from pathlib import Path

from edgemap.errors import EdgemapError

ONNX_BACKENDS = ("onnxruntime", "openvino")
_ORT_UNREGISTERED = re.compile(r"(?:(?P<domain>[\w.]+):)?(?P<op>\w+)\(-?\d+\) is not a registered function/op")
_OV_NO_RULE = re.compile(r"No conversion rule found for operations: (.+)")
_ORT_NO_KERNEL = re.compile(r"Could not find an implementation for (?P<op>\w+)\(\d+\) node with name '(?P<layer>[^']*)'")


def _layers_by(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """ONNX node names keyed by (domain.)op type and by output tensor name."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    by_op: dict[str, str] = {}
    by_output: dict[str, str] = {}
    for i, node in enumerate(graph.node):
        name = node.name or f"node {i}"
        by_op.setdefault(_qualified(node.domain, node.op_type), name)
        for out in node.output:
            by_output[out] = name
    return by_op, by_output


def _qualified(domain: str, op: str) -> str:
    return f"{domain}.{op}" if domain and domain != "ai.onnx" else op


def unsupported_in_onnxruntime(path: Path) -> list[tuple[str, str]]:
    """(operator, layer) pairs onnxruntime's CPU provider cannot run; [] when it loads the model."""
    import onnxruntime as ort

    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return []
    except Exception as exc:  # onnxruntime's Fail / NotImplemented
        msg = str(exc)
    by_op, _ = _layers_by(path)
    if m := _ORT_NO_KERNEL.search(msg):
        return [(m["op"], m["layer"])]
    if m := _ORT_UNREGISTERED.search(msg):
        op = _qualified(m["domain"] or "", m["op"])
        return [(op, by_op.get(op, "?"))]
    return [("?", msg.strip().splitlines()[0][:200])]


def unsupported_in_openvino(path: Path) -> list[tuple[str, str]]:
    """(operator, layer) pairs OpenVINO's ONNX frontend has no conversion rule for.

    Full conversion, read from OpenVINO's unconverted-operations summary. Not convert_partially():
    on some operators (com.microsoft.Inverse) it corrupts memory and the process dies later.
    """
    import openvino as ov

    try:
        ov.convert_model(str(path))
        return []
    except Exception as exc:  # OpConversionFailure and friends
        return openvino_failure(path, exc)


def openvino_failure(path: Path, exc: Exception) -> list[tuple[str, str]]:
    """The (operator, layer) pairs named in an OpenVINO conversion error."""
    msg = str(exc)
    by_op, _ = _layers_by(path)
    if m := _OV_NO_RULE.search(msg):
        return [(op.strip(), by_op.get(op.strip(), "?")) for op in m[1].split(",")]
    lines = [ln.strip() for ln in msg.strip().splitlines() if ln.strip()]
    return [("?", (lines[-1] if lines else exc.__class__.__name__)[:200])]


_CHECKS = {"onnxruntime": unsupported_in_onnxruntime, "openvino": unsupported_in_openvino}


def accepting_backends(path: str | Path) -> list[str]:
    """The ONNX-consuming backends that can run this model."""
    return [b for b in ONNX_BACKENDS if not _CHECKS[b](Path(path))]


def require_supported(path: str | Path, backend: str) -> None:
    """Raise a one-line EdgemapError naming the first unsupported operator and its layer."""
    path = Path(path)
    report_unsupported(path, backend, _CHECKS[backend](path))


def report_unsupported(path: Path, backend: str, missing: list[tuple[str, str]]) -> None:
    """Raise the one-line error for `missing` (operator, layer) pairs; nothing when the list is empty."""
    if not missing:
        return
    op, layer = missing[0]
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    others = [b for b in ONNX_BACKENDS if b != backend and not _CHECKS[b](path)]
    hint = f"backends that accept this model: {', '.join(others)}" if others else "no installed backend accepts it"
    what = f"operator {op} in layer {layer!r} is" if op != "?" else f"this model ({layer}) is"
    raise EdgemapError(f"{path.name}: {what} not supported by {backend}{more}; {hint}")
