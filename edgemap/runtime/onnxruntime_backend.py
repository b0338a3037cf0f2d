"""ONNX Runtime backend: CUDA / TensorRT providers when present, the CPU provider otherwise. No torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgemap.errors import EdgemapError
from edgemap.runtime.base import Session, TensorSpec

_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8",
              "tensor(int8)": "int8", "tensor(int64)": "int64", "tensor(double)": "float64"}
PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def available_providers() -> list[str]:
    """The execution providers this onnxruntime build offers, best first."""
    import onnxruntime as ort

    have = set(ort.get_available_providers())
    return [p for p in PREFERRED_PROVIDERS if p in have]


class OrtSession(Session):
    """An onnxruntime.InferenceSession behind the common API."""

    backend = "onnxruntime"

    def __init__(self, path: str | Path, threads: int = 0, providers: list[str] | None = None,
                 optimized_model_path: str | None = None) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise EdgemapError(f"{path}: model file not found")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        if optimized_model_path:
            opts.optimized_model_filepath = optimized_model_path
        try:
            self._sess = ort.InferenceSession(str(path), opts, providers=providers or available_providers())
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            first = str(exc).strip().splitlines()[0][:300]
            raise EdgemapError(f"{path}: onnxruntime cannot load this model ({first})") from None
        self.path = path
        self.threads = threads
        self._in_name = self._sess.get_inputs()[0].name

    def providers(self) -> list[str]:
        """The execution providers actually in use."""
        return self._sess.get_providers()

    def inputs(self) -> list[TensorSpec]:
        return [_spec(i) for i in self._sess.get_inputs()]

    def outputs(self) -> list[TensorSpec]:
        return [_spec(o) for o in self._sess.get_outputs()]

    def _run(self, x: np.ndarray) -> np.ndarray:
        try:
            return self._sess.run(None, {self._in_name: x})[0]
        except Exception as exc:
            raise EdgemapError(f"{self.path}: inference failed ({str(exc).strip().splitlines()[0][:300]})") from None

    def close(self) -> None:
        self._sess = None  # type: ignore[assignment]


def _spec(node) -> TensorSpec:  # noqa: ANN001 - onnxruntime NodeArg
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in node.shape)
    return TensorSpec(node.name, shape, _ORT_TYPES.get(node.type, node.type))


def load(path: str | Path, threads: int = 0) -> OrtSession:
    """Open a model with ONNX Runtime."""
    return OrtSession(path, threads)
