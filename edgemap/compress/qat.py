"""Quantization-aware training: fake-quantized fine-tuning in PyTorch, then a QDQ INT8 ONNX model ONNX Runtime runs.

How: BatchNorm is folded into the convolutions first (the ONNX graph the quantizer sees has it
folded too, so the weights trained here are the weights quantized there). Every conv/linear then
sees its input through a uint8 fake-quantizer whose range is an exponential moving average of the
batches, and its weight through a per-channel symmetric int8 fake-quantizer; gradients pass
straight through. After training, the plain model is exported to ONNX and quantized by ONNX
Runtime's static QDQ quantizer with the learned activation ranges written in as tensor
overrides (calibration only fills the tensors QAT does not cover, such as residual sums).
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from edgemap.compress.context import PassContext
from edgemap.core.passes import pass_function, register_pass
from edgemap.errors import EdgemapError


@dataclass(frozen=True)
class QatSettings:
    """Fine-tuning budget of QAT."""

    epochs: int = 2
    lr: float = 0.01
    batch_size: int = 256
    ema: float = 0.05  # weight of the newest batch in the activation range average


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy with every Conv2d -> BatchNorm2d pair inside a Sequential fused into one Conv2d (eval statistics)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = copy.deepcopy(model).eval()
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                seq._modules[a] = fuse_conv_bn_eval(conv, bn)
                seq._modules[b] = nn.Identity()
    return model


class FakeQuant(nn.Module):
    """Wraps a Conv2d/Linear: uint8 fake-quantized input (EMA range) and per-channel int8 symmetric weights."""

    def __init__(self, inner: nn.Module, ema: float) -> None:
        super().__init__()
        self.inner, self.ema = inner, ema
        self.register_buffer("lo", torch.tensor(0.0))
        self.register_buffer("hi", torch.tensor(0.0))
        self.register_buffer("seen", torch.tensor(False))

    def act_range(self) -> tuple[float, float]:
        """The learned input range, widened to include 0 as ONNX Runtime's ranges do."""
        return min(float(self.lo), 0.0), max(float(self.hi), 0.0)

    def act_qparams(self) -> tuple[float, int]:
        """uint8 scale and zero point of the input range."""
        lo, hi = self.act_range()
        scale = max(hi - lo, 1e-8) / 255.0
        return scale, int(round(-lo / scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            lo, hi = x.detach().min(), x.detach().max()
            if not bool(self.seen):
                self.lo.copy_(lo), self.hi.copy_(hi), self.seen.fill_(True)
            else:
                self.lo.lerp_(lo, self.ema), self.hi.lerp_(hi, self.ema)
        scale, zp = self.act_qparams()
        x = torch.fake_quantize_per_tensor_affine(x, scale, zp, 0, 255)
        w = self.inner.weight
        w_scale = (w.detach().abs().flatten(1).amax(1) / 127.5).clamp_min(1e-12)  # ONNX Runtime's symmetric int8 scale
        w = torch.fake_quantize_per_channel_affine(w, w_scale, torch.zeros_like(w_scale, dtype=torch.int32), 0, -128, 127)
        if isinstance(self.inner, nn.Conv2d):
            c = self.inner
            return F.conv2d(x, w, c.bias, c.stride, c.padding, c.dilation, c.groups)
        return F.linear(x, w, self.inner.bias)


def wrap_fake_quant(model: nn.Module, ema: float) -> dict[str, FakeQuant]:
    """Replace every Conv2d/Linear of `model` in place by a FakeQuant wrapper; returns them by module name."""
    wrapped = {}
    for name, m in list(model.named_modules()):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            wrapped[name] = FakeQuant(m, ema)
            setattr(parent, attr, wrapped[name])
    return wrapped


def unwrap(model: nn.Module) -> nn.Module:
    """Put the trained Conv2d/Linear modules back in place of their wrappers (in place)."""
    for name, m in list(model.named_modules()):
        if isinstance(m, FakeQuant):
            parent_name, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, attr, m.inner)
    return model


def activation_overrides(onnx_path: str | Path, ranges: dict[str, tuple[float, float]]) -> dict:
    """TensorQuantOverrides for ONNX Runtime: the learned (min, max) of the input tensor of each Conv/Gemm,
    found by its weight's name; ONNX Runtime derives the uint8 scale and zero point from them."""
    import numpy as np
    import onnx

    model = onnx.load(str(onnx_path))
    overrides = {}
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm", "MatMul") and len(node.input) > 1:
            module = node.input[1].removesuffix(".weight")
            if module in ranges:
                lo, hi = ranges[module]
                overrides[node.input[0]] = [{"rmin": np.array(lo, np.float32), "rmax": np.array(hi, np.float32)}]
    if not overrides:
        raise EdgemapError(f"{onnx_path}: no quantizable node matches a trained layer; cannot carry QAT ranges over")
    return overrides


def qat_train(model: nn.Module, ctx: PassContext, settings: QatSettings, norm,  # noqa: ANN001
              jpeg_augment: float = 0.0) -> tuple[nn.Module, dict, list[dict]]:
    """Fold BN, fake-quant fine-tune; returns (plain trained model, {layer: (input min, input max)}, history).
    jpeg_augment: as in training (a checkpoint trained with it keeps its robustness to compressed inputs)."""
    from edgemap.compress.finetune import finetune

    if ctx.train_set is None:
        raise EdgemapError("qat: needs training data")
    folded = fold_batchnorm(model)
    wrappers = wrap_fake_quant(folded, settings.ema)
    history = finetune(folded, ctx.train_set, settings.epochs, settings.lr, norm, settings.batch_size,
                       run_dir=ctx.sub_run_dir("qat"), progress=ctx.progress, jpeg_augment=jpeg_augment)
    ranges = {name: w.act_range() for name, w in wrappers.items()}
    return unwrap(folded).eval(), ranges, history


def export_qdq(model: nn.Module, ranges: dict[str, tuple[float, float]], out: str | Path, calib, input_shape,  # noqa: ANN001
               samples: int) -> dict:
    """Export the QAT-trained model and quantize it to QDQ INT8 with its learned ranges; returns the int8 summary."""
    from edgemap.compress.quantize import QuantizeStatic, StaticQuantizer
    from edgemap.models.onnx_export import export_onnx

    with tempfile.TemporaryDirectory(prefix="edgemap-qat-") as d:
        fp32 = Path(d) / "qat_fp32.onnx"
        export_onnx(model, fp32, input_shape)
        with StaticQuantizer(fp32, calib, QuantizeStatic(samples=samples)) as q:
            q.overrides = activation_overrides(q.pre, ranges)
            return q.quantize(out)


@register_pass("qat", consumes="checkpoint", produces="onnx", needs=("train",), deterministic=False, precision="int8")
@dataclass(frozen=True)
class Qat:
    """Quantization-aware training for `epochs`, exported to a QDQ INT8 ONNX model; compare_ptq also builds
    the static post-training INT8 model of the same checkpoint and reports its accuracy beside QAT's."""

    epochs: int = 2
    lr: float = 0.01
    batch_size: int = 256
    samples: int = 256
    compare_ptq: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.samples < 1 or self.lr <= 0:
            raise EdgemapError("qat: epochs and samples must be >= 1 and lr positive")


@pass_function(Qat)
def qat_checkpoint(cfg: Qat, source: str | Path, out: str | Path, ctx: PassContext):  # noqa: ANN201
    """The qat pass: checkpoint -> INT8 QDQ ONNX at `out`, with FP32 and (optionally) PTQ INT8 for comparison."""
    from edgemap.compress.measure import onnx_accuracy
    from edgemap.compress.onnx_report import onnx_report
    from edgemap.compress.finetune import trained_jpeg_share
    from edgemap.compress.quantize import QuantizeStatic, calibration_for, quantize_static_onnx
    from edgemap.models.onnx_export import export_onnx
    from edgemap.models.checkpoint import load_checkpoint

    model, info = load_checkpoint(source)
    ctx = dataclasses.replace(ctx, norm=info.normalization, input_shape=info.input_shape)
    calib, calib_source = calibration_for(ctx, cfg.samples, 0)
    with tempfile.TemporaryDirectory(prefix="edgemap-qat-") as d:
        fp32 = Path(d) / "fp32.onnx"
        export_onnx(model, fp32, info.input_shape)
        ptq = None
        if cfg.compare_ptq:
            quantize_static_onnx(fp32, Path(d) / "ptq.onnx", calib, QuantizeStatic(samples=cfg.samples))
            ptq = onnx_accuracy(Path(d) / "ptq.onnx", ctx.eval_set, ctx.norm)

        def work(report) -> None:  # noqa: ANN001
            trained, ranges, history = qat_train(model, ctx, QatSettings(cfg.epochs, cfg.lr, cfg.batch_size), info.normalization,
                                                 trained_jpeg_share(info))
            report.extra["int8"] = export_qdq(trained, ranges, out, calib, info.input_shape, cfg.samples)
            report.extra["history"] = history

        report = onnx_report("qat", cfg, fp32, out, ctx, work)
    report.extra["ptq_static_int8_accuracy"] = ptq
    report.extra["calibration"] = {"samples": len(calib), "source": calib_source}
    report.notes.append("before: the FP32 ONNX export of the checkpoint; after: the QAT INT8 model")
    return report
