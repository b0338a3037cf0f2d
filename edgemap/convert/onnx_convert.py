"""`edgemap convert --to onnx`: export (or take) an ONNX model, simplify it with onnxslim, gate it on parity."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from edgemap.convert.operators import require_supported
from edgemap.convert.parity import Tolerance
from edgemap.convert.result import ConversionResult, verify
from edgemap.convert.source import Source, parity_inputs
from edgemap.core.atomic import atomic_path
from edgemap.errors import EdgemapError


def simplify_onnx(path: Path) -> None:
    """Rewrite `path` in place with onnxslim (constant folding, redundant node removal)."""
    import onnx
    import onnxslim

    try:
        slim = onnxslim.slim(onnx.load(str(path)))
    except Exception as exc:  # onnxslim surfaces shape-inference and onnx errors untyped
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:200]
        raise EdgemapError(f"onnxslim could not simplify the model: {first}") from None
    onnx.save(slim, str(path))


def _default_opset(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def write_onnx(src: Source, target: Path, opset: int = 18, dynamic_batch: bool = True) -> None:
    """The source as one .onnx file at `target`: exported from PyTorch, or copied when it already is ONNX."""
    if src.model is not None:
        from edgemap.models.onnx_export import export_onnx

        fixed = src.fixed_batch is not None
        export_onnx(src.model, target, src.input_shape, opset=opset, dynamic_batch=dynamic_batch and not fixed,
                    batch=src.fixed_batch)
        got = _default_opset(target)
        if got != opset:  # the exporter falls back silently when it cannot down-convert the graph
            raise EdgemapError(f"the PyTorch exporter could not write opset {opset} for this model (it wrote {got}); "
                               f"choose --opset {got} or higher")
    else:
        shutil.copyfile(src.onnx_path, target)


def convert_to_onnx(src: Source, out: str | Path, opset: int = 18, simplify: bool = True, dynamic_batch: bool = True,
                    parity_n: int = 1000, tolerance: Tolerance | None = None) -> ConversionResult:
    """Export/simplify `src` to `out` (.onnx); refuse, leaving no file, when it fails the parity gate."""
    out = Path(out)
    if out.suffix != ".onnx":
        raise EdgemapError(f"{out}: an ONNX model's file name must end in .onnx")
    t0 = time.perf_counter()
    notes = []
    with atomic_path(out) as tmp:
        write_onnx(src, tmp, opset, dynamic_batch)
        require_supported(tmp, "onnxruntime")
        if simplify:
            simplify_onnx(tmp)
            notes.append("simplified with onnxslim")
        report = verify(src, "onnxruntime", tmp, parity_inputs(src, parity_n), "fp32", tolerance,
                        f"{src.name} -> ONNX")
    return ConversionResult(out, "onnx", "fp32", src.name, report, out.stat().st_size, time.perf_counter() - t0, notes)
