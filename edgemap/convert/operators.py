"""Which backends accept an ONNX model, and a clear error naming the operator and layer when one does not.

Each engine is asked itself (onnxruntime builds a session, OpenVINO converts partially and
reports the nodes it could not translate): a hand-kept list of supported operators would drift
from the installed engines.
"""

from __future__ import annotations

import re
from pathlib import Path

from edgemap.errors import EdgemapError

ONNX_BACKENDS = ("onnxruntime", "openvino")
_ORT_UNREGISTERED = re.compile(r"(?:(?P<domain>[\w.]+):)?(?P<op>\w+)\(-?\d+\) is not a registered function/op")
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
    """(operator, layer) pairs OpenVINO's ONNX frontend has no conversion rule for."""
    import openvino as ov

    frontend = ov.frontend.FrontEndManager().load_by_framework("onnx")
    model = frontend.convert_partially(frontend.load(str(path)))
    _, by_output = _layers_by(path)
    found = []
    for op in model.get_ops():
        if "FrameworkNode" in op.get_type_name():
            attrs = op.get_attributes()
            name = _qualified(attrs.get("ONNX_META_domain", ""), attrs.get("ONNX_META_type", op.get_type_name()))
            found.append((name, by_output.get(op.get_friendly_name(), op.get_friendly_name())))
    return found


_CHECKS = {"onnxruntime": unsupported_in_onnxruntime, "openvino": unsupported_in_openvino}


def accepting_backends(path: str | Path) -> list[str]:
    """The ONNX-consuming backends that can run this model."""
    return [b for b in ONNX_BACKENDS if not _CHECKS[b](Path(path))]


def require_supported(path: str | Path, backend: str) -> None:
    """Raise a one-line EdgemapError naming the first unsupported operator and its layer."""
    path = Path(path)
    missing = _CHECKS[backend](path)
    if not missing:
        return
    op, layer = missing[0]
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    others = [b for b in ONNX_BACKENDS if b != backend and not _CHECKS[b](path)]
    hint = f"backends that accept this model: {', '.join(others)}" if others else "no installed backend accepts it"
    raise EdgemapError(f"{path.name}: operator {op} in layer {layer!r} is not supported by {backend}{more}; {hint}")
