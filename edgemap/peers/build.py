"""Peer INT8 models from an FP32 ONNX file, each with its tool's documented defaults (no edgemap tuning).

- ort_olive_int8: onnxruntime.quantization.quantize_static with the defaults of Olive's OnnxQuantization
  pass (static mode): quant_preprocess, QDQ format, int8 activations and weights, per-tensor weights
  (per_channel=False), no reduce_range, MinMax calibration, asymmetric activations, symmetric weights.
- nncf_ort_int8: nncf.quantize on the ONNX model (NNCF's defaults: preset PERFORMANCE, 300 samples),
  saved as a QDQ .onnx and run by ONNX Runtime.
- nncf_openvino_int8: openvino.convert_model, then nncf.quantize (same defaults), saved as IR and run
  by OpenVINO.

Calibration data is float32 model input (already preprocessed), one image per item as NNCF expects.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edgemap.core.atomic import atomic_path
from edgemap.errors import EdgemapError

NNCF_SUBSET = 300  # nncf.quantize's default subset_size


@dataclass(frozen=True)
class Peer:
    """One peer model file, the backend that runs it, how it was made, and its build time."""

    name: str
    path: Path
    backend: str
    recipe: str
    build_s: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"name": self.name, "path": str(self.path), "backend": self.backend, "recipe": self.recipe,
                "build_s": round(self.build_s, 2), "notes": list(self.notes)}


def ort_olive_int8(onnx_path: Path, calib: np.ndarray, out: Path) -> Peer:
    """ONNX Runtime static INT8 with Olive's OnnxQuantization defaults (see the module docstring)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgemap-peer-") as d, _quiet():
        pre = Path(d) / "pre.onnx"
        try:
            quant_pre_process(str(onnx_path), str(pre))
        except Exception:  # symbolic shape inference fails on some exporter graphs; Olive then skips it too
            quant_pre_process(str(onnx_path), str(pre), skip_symbolic_shape=True)
        with atomic_path(out) as tmp:
            quantize_static(str(pre), str(tmp), _OrtReader(pre, calib), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=False,
                            reduce_range=False, calibrate_method=CalibrationMethod.MinMax,
                            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
    recipe = "quantize_static: QDQ, S8S8, per-tensor, MinMax, quant_pre_process (Olive OnnxQuantization defaults)"
    return Peer("ort_olive_int8", out, "onnxruntime", recipe, time.perf_counter() - t0)


def nncf_ort_int8(onnx_path: Path, calib: np.ndarray, out: Path) -> Peer:
    """nncf.quantize on the ONNX graph with NNCF's defaults; ONNX Runtime runs the QDQ result."""
    import nncf
    import onnx

    t0 = time.perf_counter()
    model = onnx.load(str(onnx_path))
    name = _onnx_input_name(model)
    dataset = nncf.Dataset([calib[i:i + 1] for i in range(len(calib))], lambda x: {name: x})
    with _quiet():
        quantized = nncf.quantize(model, dataset, subset_size=min(NNCF_SUBSET, len(calib)))
    with atomic_path(out) as tmp:
        onnx.save(quantized, str(tmp))
    return Peer("nncf_ort_int8", out, "onnxruntime", f"nncf.quantize(onnx), defaults, {min(NNCF_SUBSET, len(calib))} "
                "calibration images", time.perf_counter() - t0)


def nncf_openvino_int8(onnx_path: Path, calib: np.ndarray, out: Path) -> Peer:
    """openvino.convert_model + nncf.quantize with NNCF's defaults, saved as IR (.xml + .bin)."""
    import nncf
    import openvino as ov

    if out.suffix != ".xml":
        raise EdgemapError(f"{out}: an OpenVINO IR's name ends in .xml")
    t0 = time.perf_counter()
    model = ov.convert_model(str(onnx_path))
    dataset = nncf.Dataset([calib[i:i + 1] for i in range(len(calib))])
    with _quiet():
        quantized = nncf.quantize(model, dataset, subset_size=min(NNCF_SUBSET, len(calib)))
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.stem}.") as d:
        tmp = Path(d) / out.name
        ov.save_model(quantized, str(tmp), compress_to_fp16=False)
        tmp.with_suffix(".bin").replace(out.with_suffix(".bin"))  # weights first: an .xml never lacks its .bin
        tmp.replace(out)
    return Peer("nncf_openvino_int8", out, "openvino", f"openvino.convert_model + nncf.quantize, defaults, "
                f"{min(NNCF_SUBSET, len(calib))} calibration images", time.perf_counter() - t0)


BUILDERS: dict[str, tuple[Callable[[Path, np.ndarray, Path], Peer], str]] = {
    "ort_olive_int8": (ort_olive_int8, ".onnx"),
    "nncf_ort_int8": (nncf_ort_int8, ".onnx"),
    "nncf_openvino_int8": (nncf_openvino_int8, ".xml"),
}


def build_peers(onnx_path: str | Path, calib: np.ndarray, out_dir: str | Path,
                names: tuple[str, ...] | None = None) -> dict[str, Peer]:
    """Every named peer (default: all) of `onnx_path`, written under out_dir; a peer that fails says why."""
    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    if not onnx_path.is_file():
        raise EdgemapError(f"{onnx_path}: model file not found")
    _check_calibration(calib)
    names = names or tuple(BUILDERS)
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        raise EdgemapError(f"unknown peer(s) {', '.join(unknown)}; known: {', '.join(BUILDERS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    peers = {}
    for name in names:
        fn, suffix = BUILDERS[name]
        try:
            peers[name] = fn(onnx_path, calib, out_dir / f"{onnx_path.stem}.{name}{suffix}")
        except EdgemapError:
            raise
        except Exception as exc:  # each tool raises its own types; the user needs which peer and why
            first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:300]
            raise EdgemapError(f"peer {name} could not be built from {onnx_path.name} ({first})") from None
    return peers


def _check_calibration(calib: np.ndarray) -> None:
    if not isinstance(calib, np.ndarray) or calib.dtype != np.float32 or calib.ndim < 2 or len(calib) == 0:
        raise EdgemapError(f"peer calibration data must be a non-empty float32 batch, got "
                           f"{getattr(calib, 'dtype', type(calib).__name__)} {getattr(calib, 'shape', '')}")
    if not np.isfinite(calib).all():
        raise EdgemapError("peer calibration data holds NaN/Inf values")


def _onnx_input_name(model) -> str:  # noqa: ANN001 - onnx.ModelProto
    inits = {i.name for i in model.graph.initializer}
    return next(i.name for i in model.graph.input if i.name not in inits)


class _OrtReader:
    """onnxruntime CalibrationDataReader over `calib`, batches of the model's fixed batch or 1 image."""

    def __init__(self, model_path: Path, calib: np.ndarray) -> None:
        import onnx

        model = onnx.load(str(model_path), load_external_data=False)
        self.name = _onnx_input_name(model)
        inp = next(i for i in model.graph.input if i.name == self.name)
        dim0 = inp.type.tensor_type.shape.dim[0]
        self.batch = dim0.dim_value if dim0.HasField("dim_value") and dim0.dim_value > 0 else 1
        self.calib = calib
        self.rewind()

    def get_next(self) -> dict | None:
        batch = next(self._it, None)
        return None if batch is None else {self.name: batch}

    def rewind(self) -> None:
        n = len(self.calib) - len(self.calib) % self.batch
        self._it = iter([self.calib[i:i + self.batch] for i in range(0, n, self.batch)])


@contextlib.contextmanager
def _quiet():
    """The tools print progress bars and warnings; keep them off the user's report."""
    level = logging.getLogger("nncf").level
    logging.getLogger("nncf").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.getLogger("nncf").setLevel(level)
