"""ONNX Runtime's static INT8 quantizer, prepared once per model: pre-processing, calibration cache, variants.

Kept apart from the quantize passes so that accuracy control (which drives it) and the passes (which
call accuracy control) do not import each other.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from edgemap.compress.calibration import check_calibration, data_reader, model_input_shape
from edgemap.compress.inspect import load_onnx, require_integer_kernels, require_quantizable
from edgemap.core.atomic import atomic_path
from edgemap.errors import EdgemapError

class StaticQuantizer:
    """Pre-processes a model and calibrates once; quantize() then writes variants (e.g. with layers excluded).

    The calibration ranges are cached in a temporary folder, so accuracy control can try many
    exclusion sets without re-running calibration.
    """

    def __init__(self, source: str | Path, calib: np.ndarray, cfg: Any) -> None:
        self.source, self.cfg = Path(source), cfg
        self.nodes = require_quantizable(source)
        check_calibration(calib, source)
        self._tmp = tempfile.TemporaryDirectory(prefix="edgemap-quant-")
        self.pre = Path(self._tmp.name) / "pre.onnx"
        preprocess(source, self.pre)
        self.input_name, shape = model_input_shape(self.pre)
        self.calib = calib
        self.batch = shape[0] if isinstance(shape[0], int) else 32  # a fixed-batch model takes its own batch
        self._cache = Path(self._tmp.name) / "calibration.json"
        self.overrides: dict = {}  # TensorQuantOverrides, e.g. activation ranges learned by QAT
        self.all_nodes = [n.name for n in load_onnx(self.pre).graph.node]
        self.base_exclude = tuple(cfg.exclude) + (self._first_last() if cfg.float_first_last else ())

    def quantize(self, out: str | Path, exclude: list[str] | tuple[str, ...] = ()) -> dict:
        """Write the INT8 model to `out` (atomically) and return its runtime integer-kernel summary."""
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[self.cfg.calibration]
        extra = {"ActivationSymmetric": self.cfg.symmetric_activations, "WeightSymmetric": True,
                 "CalibPercentile": self.cfg.percentile}
        if self.overrides:
            extra["TensorQuantOverrides"] = self.overrides
        unknown = sorted(set(exclude) - set(self.all_nodes))
        if unknown:
            raise EdgemapError(f"quantize_static: no node named {', '.join(unknown)}; quantizable: {', '.join(self.nodes)}")
        # the calibrators print progress to stdout; keep the CLI output to the report
        with atomic_path(out) as tmp, warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            quantize_static(str(self.pre), str(tmp), data_reader(self.calib, self.input_name, self.batch),
                            quant_format=QuantFormat.QDQ, per_channel=self.cfg.per_channel,
                            activation_type=QuantType.QInt8 if self.cfg.symmetric_activations else QuantType.QUInt8,
                            weight_type=QuantType.QInt8, calibrate_method=method, nodes_to_exclude=list(exclude),
                            extra_options=extra, calibration_cache_path=str(self._cache))
            return require_integer_kernels(tmp)

    def _first_last(self) -> tuple[str, ...]:
        """The first quantizable node, the last one and everything after it (e.g. a logit scale): kept in float."""
        return (self.nodes[0], *self.all_nodes[self.all_nodes.index(self.nodes[-1]):])

    def close(self) -> None:
        self._tmp.cleanup()

    def __enter__(self) -> "StaticQuantizer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def preprocess(source: str | Path, out: str | Path) -> None:
    """ONNX Runtime's quant_pre_process (shape inference + graph optimisation); symbolic shape inference is
    skipped when it cannot handle the graph (it fails on some exporter outputs), and unnamed nodes get names."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(source), str(out))
    except Exception:  # symbolic inference raises TypeError/Exception on graphs it does not understand
        quant_pre_process(str(source), str(out), skip_symbolic_shape=True)
    model = onnx.load(str(out))
    if any(not n.name for n in model.graph.node):
        for i, n in enumerate(model.graph.node):
            n.name = n.name or f"{n.op_type}_{i}"
        onnx.save(model, str(out))


def copy_file(src: str | Path, dst: str | Path) -> None:
    """Atomic copy (a half-copied model never appears at `dst`)."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
