"""Device profiles: what a device has (compute, memory, power, runtimes), every figure with its source.

A profile is one YAML file validated by the pydantic models below. Each number is a `Figure`
(value + where it comes from + whether it was measured, read from a datasheet, or estimated),
so that an estimate built on it can say how much to trust it. A malformed file becomes one
EdgemapError line naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgemap.errors import EdgemapError

DTYPES = ("fp32", "fp16", "int8")
Basis = Literal["datasheet", "measured", "estimated"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Figure(_Strict):
    """One number and its provenance."""

    value: float = Field(ge=0)
    basis: Basis
    source: str = Field(min_length=3, description="URL, document, or how it was derived")


class Calibration(_Strict):
    """Roofline efficiency factors for one compute unit (fraction of peak reached per layer kind).

    `memory` is relative to the profile's DRAM bandwidth (above 1 when working sets stay in
    cache); `per_layer_s` is the fixed cost of dispatching one layer, `per_thread_layer_s` the
    extra cost per layer of each extra thread; `parallel_efficiency` is the speed-up each
    extra thread adds (1.0 = perfect scaling, 0 = none).
    """

    conv: float = Field(gt=0, le=1.5)
    depthwise: float = Field(gt=0, le=1.5)
    gemm: float = Field(gt=0, le=1.5)
    memory: float = Field(gt=0, le=50)
    per_layer_s: float = Field(ge=0)
    per_thread_layer_s: float = Field(0.0, ge=0)
    parallel_efficiency: float = Field(ge=0, le=1)
    int8: float = Field(1.0, gt=0, le=2, description="extra factor on INT8 layers (requantization, packing)")
    basis: Basis
    source: str = Field(min_length=3)


class ComputeUnit(_Strict):
    """A CPU cluster, GPU, NPU or MCU core: peak arithmetic throughput per data type (ops/s, 1 MAC = 2 ops)."""

    name: str
    type: Literal["cpu", "gpu", "npu", "dsp", "mcu"]
    cores: int = Field(ge=1)
    clock_hz: Figure
    peak_ops: dict[str, Figure]
    dtypes: list[str] = Field(min_length=1, description="data types this unit computes natively")
    calibration: Calibration | None = None

    @field_validator("peak_ops")
    @classmethod
    def _known_dtypes(cls, v: dict[str, Figure]) -> dict[str, Figure]:
        unknown = set(v) - set(DTYPES)
        if unknown:
            raise ValueError(f"unknown data type(s) {sorted(unknown)}; known: {list(DTYPES)}")
        if "fp32" not in v:
            raise ValueError("fp32 throughput is required (other data types fall back to it)")
        return v

    @field_validator("dtypes")
    @classmethod
    def _known_native(cls, v: list[str]) -> list[str]:
        unknown = set(v) - set(DTYPES)
        if unknown:
            raise ValueError(f"unknown data type(s) {sorted(unknown)}; known: {list(DTYPES)}")
        return v


class Memory(_Strict):
    """Main memory, on-chip memory and storage."""

    ram_bytes: Figure
    bandwidth_bytes_per_s: Figure
    cache_bytes: Figure = Field(description="last-level cache / on-chip SRAM the working set can live in")
    storage_bytes: Figure = Field(description="flash / eMMC / SD / SSD that holds the model file")
    weights_in_flash: bool = Field(False, description="weights execute in place from flash (MCUs): not counted in RAM")


class Power(_Strict):
    """Board power draw at idle and with the compute units busy."""

    idle_w: Figure
    active_w: Figure


class DeviceProfile(_Strict):
    """Everything the estimators need to know about one device."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str
    compute_units: list[ComputeUnit] = Field(min_length=1)
    memory: Memory
    power: Power
    runtimes: list[str] = Field(min_length=1)
    formats: list[str] = Field(min_length=1, description="model file formats its runtimes load: onnx, tflite, ...")
    backends: dict[str, list[str]] = Field(default_factory=dict, description="backend -> the precisions it runs on "
                                           "this device, where fewer than its native data types (absent: all of them)")
    notes: str = ""

    @field_validator("backends")
    @classmethod
    def _known_backend_dtypes(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        bad = sorted({d for ds in v.values() for d in ds} - set(DTYPES))
        if bad:
            raise ValueError(f"unknown data type(s) {bad}; known: {list(DTYPES)}")
        return v

    def backend_precisions(self, backend: str) -> tuple[str, ...]:
        """The precisions `backend` runs on this device: () when the device lacks it; else its `backends` entry,
        or every native data type of the compute units."""
        if backend not in self.runtimes:
            return ()
        native = [d for d in DTYPES if any(d in u.dtypes for u in self.compute_units)]
        return tuple(d for d in native if d in self.backends.get(backend, native))

    @model_validator(mode="after")
    def _unique_units(self) -> "DeviceProfile":
        names = [u.name for u in self.compute_units]
        if len(set(names)) != len(names):
            raise ValueError(f"compute unit names repeat: {names}")
        return self

    def unit(self, name: str | None = None) -> ComputeUnit:
        """The named compute unit (the first one when `name` is None)."""
        if name is None:
            return self.compute_units[0]
        for u in self.compute_units:
            if u.name == name:
                return u
        raise EdgemapError(f"device {self.name!r} has no compute unit {name!r}; it has: "
                           f"{', '.join(u.name for u in self.compute_units)}")


def parse_profile(data: object, where: str) -> DeviceProfile:
    """Validate already-parsed YAML; errors name `where` and the first bad field."""
    try:
        return DeviceProfile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise EdgemapError(f"{where}: invalid device profile: field {field}: {err['msg']}{more}") from None


def load_profile(path: str | Path) -> DeviceProfile:
    """Read and validate one profile YAML file."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise EdgemapError(f"{path}: cannot read device profile ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise EdgemapError(f"{path}: not valid YAML{at}") from None
    return parse_profile(data, str(path))
