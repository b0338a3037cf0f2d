"""A search candidate compiled into the recipe passes that build it: the very list `edgemap map` writes and
`edgemap run` replays, with every option (seeds, round_to, calibration size) filled in.

    [prune_channels | prune_user_model]  (when pruned)
    litert:       convert_litert(precision)                       (from the torch model: it quantizes itself)
    onnxruntime:  [export_onnx] [quantize_static | quantize_fp16]
    openvino:     [export_onnx] [quantize_static | quantize_fp16] convert_openvino(precision)
"""

from __future__ import annotations

from dataclasses import dataclass

from edgemap.core import passes
from edgemap.core.artifact import TORCH_FORMATS
from edgemap.errors import EdgemapError
from edgemap.runtime.registry import CAPABILITIES
from edgemap.search.candidate import Candidate

ROUND_TO = 8  # pruned widths stay multiples of 8: ORT's INT8 kernels ran widths 9/19/38/76 x1.7 slower than 8/16/32/72
              # (benchmarks/results/prune_widths.md), slower than the unpruned model


@dataclass(frozen=True)
class BuildSettings:
    """What every candidate of one search shares: the model's format and the options of its passes."""

    source_format: str = "checkpoint"
    finetune_epochs: int | None = None  # None: user models fine-tune on the step/minute budget below
    finetune_precision: str = "fp32"
    finetune_steps: int | None = 300
    finetune_minutes: float | None = None
    finetune_max_drop: float | None = None  # early stop once the pruned model is this close to the unpruned one
    calib_samples: int = 256
    seed: int = 0
    round_to: int = ROUND_TO
    opset: int = 18


def compile_passes(c: Candidate, s: BuildSettings) -> list[dict]:
    """The recipe passes (full configs) that build candidate `c` from a model of format s.source_format."""
    import edgemap.pipeline.loaded  # noqa: F401 - the pass registry fills in every default

    steps: list[dict] = []
    fmt = s.source_format
    if c.prune_ratio > 0:
        steps.append(_prune_step(c.prune_ratio, s))
        fmt = "checkpoint" if fmt == "checkpoint" else "onnx"
    target = CAPABILITIES[c.backend].format
    if target == "litert":
        steps.append({"type": "convert_litert", "precision": c.precision, "samples": s.calib_samples, "seed": s.seed})
    else:
        if fmt in TORCH_FORMATS:
            steps.append({"type": "export_onnx", "opset": s.opset, "simplify": fmt == "checkpoint"})
        if c.precision == "int8":
            # first conv and classifier stay float: ORT's INT8 kernels for 3 input channels and the small final Gemm are
            # slower than FP32 (measured: x2.68 vs x1.94 faster than FP32 for resnet9s, same accuracy; compress_int8.md)
            steps.append({"type": "quantize_static", "calibration": c.calibration, "samples": s.calib_samples,
                          "float_first_last": True, "seed": s.seed})
        elif c.precision == "fp16":
            steps.append({"type": "quantize_fp16"})
        if target == "openvino":
            steps.append({"type": "convert_openvino", "precision": c.precision, "samples": s.calib_samples, "seed": s.seed})
    return [passes.config_to_dict(passes.config_from_dict(step)) for step in steps]


def _prune_step(ratio: float, s: BuildSettings) -> dict:
    """prune_channels (a checkpoint) or prune_user_model: the fine-tuning budget, unless epochs are given."""
    common = {"ratio": ratio, "round_to": s.round_to, "precision": s.finetune_precision, "seed": s.seed}
    kind = "prune_channels" if s.source_format == "checkpoint" else "prune_user_model"
    if s.finetune_epochs is not None:
        return {"type": kind, **common, "finetune_epochs": s.finetune_epochs, "distill": s.finetune_epochs > 0}
    return {"type": kind, **common, "finetune_steps": s.finetune_steps, "finetune_minutes": s.finetune_minutes,
            "max_drop": s.finetune_max_drop, "distill": True}


def chain_error(c: Candidate, source_format: str) -> str | None:
    """None when the candidate's passes chain from `source_format` to its backend's format at its precision
    (each pass's declared consumes/produces/precision); else why not."""
    try:
        steps = compile_passes(c, BuildSettings(source_format=source_format))
    except EdgemapError as exc:
        return str(exc)
    fmt, precision = source_format, "fp32"
    for step in steps:
        spec = passes.spec(step["type"])
        if fmt not in spec.consumes:
            return f"{spec.type_name} takes {' or '.join(spec.consumes)}, and this model is {fmt} at that point"
        fmt, precision = spec.produces, spec.output_precision(passes.config_from_dict(step), precision)
    want = CAPABILITIES[c.backend]
    if fmt != want.format or precision != c.precision:
        return f"no pass chain makes a {c.precision} {want.format} model from a {source_format} one"
    return None


def candidate_recipe(base: dict, c: Candidate, s: BuildSettings) -> dict:
    """The full recipe of a candidate: the search's model, data and preprocessing plus its passes and runtime."""
    return {**base, "passes": compile_passes(c, s), "runtime": {"backend": c.backend, "threads": c.threads}}
