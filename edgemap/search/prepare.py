"""What a search needs before its first trial: evaluation arrays, calibration, baseline, pruned variants."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemap.core.atomic import atomic_path
from edgemap.data.dataset import ImageSet
from edgemap.data.preprocess import PreprocessSpec
from edgemap.errors import EdgemapError

SAMPLE_CALIBRATION = 256  # when there is no training data, this many eval images calibrate, the rest evaluate
HOLDOUT_SEED = 0  # fixed, so `edgemap run` replays the same split
FINETUNE_LR = 0.05  # fine-tuning learning rate of a pruned model with BatchNorm
FINETUNE_LR_NO_BN = 0.01  # without BatchNorm (folded by ONNX exporters) 0.05 diverges: loss 477 in 7 steps on ByomNet
ROUND_TO = 8  # pruned widths stay multiples of 8: ORT's INT8 kernels ran widths 9/19/38/76 x1.7 slower than 8/16/32/72
              # (benchmarks/results/prune_widths.md), slower than the unpruned model


@dataclass
class SearchData:
    """The data sets of one search and where they came from (printed, so the user knows what was measured)."""

    eval_set: ImageSet
    calib_set: ImageSet
    train_set: ImageSet | None
    note: str


def split_data(eval_set: ImageSet, train_set: ImageSet | None) -> SearchData:
    """Calibrate on training data when there is some; otherwise hold out SAMPLE_CALIBRATION random eval images.

    Random, not the first ones: an image folder lists its images class by class, so its first images would
    calibrate on one class and leave that class out of the evaluation."""
    if train_set is not None:
        return SearchData(eval_set, train_set, train_set, f"calibration and fine-tuning on {train_set.source}")
    if len(eval_set) < 2 * SAMPLE_CALIBRATION:
        raise EdgemapError(f"{eval_set.source}: {len(eval_set)} images are too few to both calibrate and evaluate "
                           f"(need {2 * SAMPLE_CALIBRATION}, or give training data)")
    held = np.zeros(len(eval_set), dtype=bool)
    held[np.random.default_rng(HOLDOUT_SEED).choice(len(eval_set), SAMPLE_CALIBRATION, replace=False)] = True
    calib, rest = eval_set.subset(held), eval_set.subset(~held)
    return SearchData(rest, calib, None, f"no training data: {SAMPLE_CALIBRATION} images of {eval_set.source} picked at "
                                          f"random (seed {HOLDOUT_SEED}) calibrate, the other {len(rest)} evaluate; pruning is off")


def write_arrays(work: Path, data: SearchData, spec: PreprocessSpec, calib_samples: int, seed: int = 0) -> tuple[Path, Path]:
    """Preprocessed eval inputs (.npz with x, labels, lossless) and calibration inputs (.npy), written atomically."""
    work.mkdir(parents=True, exist_ok=True)
    eval_npz, calib_npy = work / "eval.npz", work / "calibration.npy"
    with atomic_path(eval_npz) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, x=spec.apply(data.eval_set.images), labels=data.eval_set.labels, lossless=data.eval_set.lossless)
    with atomic_path(work / "selftest_images.npy") as tmp:  # raw images: the bundle's self-test preprocesses them itself
        with open(tmp, "wb") as f:
            np.save(f, data.eval_set.images[:16])
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(data.calib_set), min(calib_samples, len(data.calib_set)), replace=False))
    with atomic_path(calib_npy) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, spec.apply(data.calib_set.images[pick]))
    return eval_npz, calib_npy


def pruned_variants(model: Path, ratios: list[float], data: SearchData, work: Path, epochs: int, progress: bool,
                    precision: str = "fp32") -> dict[str, str]:
    """Prune + fine-tune (distilling from the original) once per ratio; cached across runs of the search."""
    from edgemap.compress.context import PassContext
    from edgemap.compress.prune import PruneChannels, prune_checkpoint

    out = {}
    for r in ratios:
        path = work / "pruned" / f"p{r:g}.safetensors"
        if not path.is_file():
            cfg = PruneChannels(ratio=r, round_to=ROUND_TO, finetune_epochs=epochs, distill=epochs > 0, precision=precision)
            ctx = PassContext(train_set=data.train_set, eval_set=None, run_dir=work / "pruned" / f"p{r:g}.run",
                              latency_runs=0, progress=progress)
            prune_checkpoint(cfg, model, path, ctx)
        out[f"{r:g}"] = str(path)
    return out


def pruned_user_variants(user, spec: PreprocessSpec, ratios: list[float], data: SearchData, work: Path, epochs: int,  # noqa: ANN001
                         progress: bool, precision: str = "fp32") -> dict[str, str]:
    """For a user model: torch form (ONNX graphs via onnx_to_torch) -> prune (classifier size kept) -> fine-tune
    with distillation from the original on the user's training images -> FP32 ONNX per ratio; cached."""
    from edgemap.compress.finetune import finetune
    from edgemap.compress.prune import PruneChannels, prune_model
    from edgemap.convert.onnx_export import export_onnx

    shape = tuple(user.info.input_shape)
    out = {}
    for r in ratios:
        path = work / "pruned" / f"p{r:g}.onnx"
        if not path.is_file():
            original = user.torch_module()
            pruned = prune_model(original, PruneChannels(ratio=r, round_to=ROUND_TO), shape)
            finetune(pruned, data.train_set, epochs, finetune_lr(pruned), spec, teacher=original.eval(),
                     run_dir=work / "pruned" / f"p{r:g}.run", progress=progress, precision=precision)
            export_onnx(pruned.eval(), path, shape, dynamic_batch=user.info.fixed_batch is None)
        out[f"{r:g}"] = str(path)
    return out


def finetune_lr(model) -> float:  # noqa: ANN001 - nn.Module
    """The fine-tuning learning rate: a model converted from ONNX usually has its BatchNorm folded into the
    convolutions, and such a plain conv stack diverges at the rate BatchNorm models take."""
    from torch import nn

    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    return FINETUNE_LR if has_bn else FINETUNE_LR_NO_BN
