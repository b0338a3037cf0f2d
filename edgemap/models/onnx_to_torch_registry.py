"""The handler registry of the ONNX -> torch converter: ONNX op type -> function(builder, node) -> fx node.

The operator modules (onnx_to_torch_ops, onnx_to_torch_elementwise) register into it; the converter reads
it after importing them, so no operator module imports another.
"""

from __future__ import annotations

from typing import Any, Callable

Handler = Callable[[Any, Any], Any]
HANDLERS: dict[str, Handler] = {}


def handles(*ops: str) -> Callable[[Handler], Handler]:
    """Register a handler for the named ONNX op types."""
    def wrap(fn: Handler) -> Handler:
        """Add `fn` to HANDLERS under each op type."""
        for op in ops:
            HANDLERS[op] = fn
        return fn
    return wrap


def attrs(node: Any) -> dict:
    """A node's attributes as python values (bytes decoded)."""
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out
