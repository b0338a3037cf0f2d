"""The session API every backend implements: load, input/output spec, run, close."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from edgemap.errors import EdgemapError


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape (None for a dynamic axis) and numpy dtype of a model input or output."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str


class Session(ABC):
    """A loaded model ready to run; subclasses wrap one engine each."""

    backend: str = "?"

    @abstractmethod
    def inputs(self) -> list[TensorSpec]:
        """The model's inputs."""

    @abstractmethod
    def outputs(self) -> list[TensorSpec]:
        """The model's outputs."""

    @abstractmethod
    def _run(self, x: np.ndarray) -> np.ndarray:
        """Run the engine on an already checked input."""

    def run(self, x: np.ndarray, check_finite: bool = True) -> np.ndarray:
        """Run on one batch; wrong shape/dtype and NaN/Inf inputs are reported, not passed on."""
        self.check_input(x, check_finite)
        return self._run(x)

    def close(self) -> None:
        """Release the engine's resources."""

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check_input(self, x: np.ndarray, check_finite: bool = True) -> None:
        """Raise EdgemapError when `x` cannot be fed to input 0."""
        spec, dtype = self._input_rule()
        if not isinstance(x, np.ndarray):
            raise EdgemapError(f"input must be a numpy array, got {type(x).__name__}")
        if x.dtype != dtype:
            raise EdgemapError(f"input dtype {x.dtype} does not match the model's {spec.dtype}")
        if x.ndim != len(spec.shape):
            raise EdgemapError(f"input has shape {x.shape}; the model expects {_fmt(spec.shape)}")
        for axis, (got, want) in enumerate(zip(x.shape, spec.shape)):
            if want is not None and got != want:
                what = "batch larger than this fixed-batch model accepts" if axis == 0 and got > want else "shape mismatch"
                raise EdgemapError(f"input has shape {x.shape}; the model expects {_fmt(spec.shape)} ({what})")
        if check_finite and np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            bad = int((~np.isfinite(x)).sum())
            raise EdgemapError(f"input holds {bad} NaN/Inf value(s)")

    def _input_rule(self) -> tuple[TensorSpec, np.dtype]:
        # input 0's spec does not change once loaded (a resizable batch axis is None): asking the engine on
        # every call cost a few microseconds, a tenth of a small INT8 model's whole run
        rule = self.__dict__.get("_rule")
        if rule is None:
            spec = self.inputs()[0]
            rule = self.__dict__["_rule"] = (spec, np.dtype(spec.dtype))
        return rule


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
