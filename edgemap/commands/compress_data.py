"""The data a `compress` command works on, loaded into a PassContext and labelled in the model's class order.

A checkpoint's order is --classes/--labels, else its record (`class_names` in the sidecar); an .onnx file's is
--classes/--labels, else its `metadata_props`. Image folders are labelled by sorted sub-folder names, so their labels
are matched to the model's order by name; a folder whose class names are not the model's is refused, naming them.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from edgemap.compress.context import PassContext
from edgemap.errors import EdgemapError


def make_context(data: Path | None, eval_data: Path | None, limit: int, latency_runs: int, run_dir: Path | None,
                 needs_train: bool) -> PassContext:
    """Load the training set (when needed or available) and the evaluation set into a PassContext.

    --data: a CIFAR-10 location, an .npz or an image folder (root/<class>/ or root/train/<class>/); unset: $EDGEMAP_CIFAR10."""
    from edgemap.data.cifar10 import ENV_VAR, load_cifar10
    from edgemap.data.resolve import load_eval_data

    train = None
    if data is not None:
        train = load_eval_data(data, "train")
    elif needs_train or os.environ.get(ENV_VAR):
        train = load_cifar10("train")
    if train is not None and limit:
        train = train.subset(slice(0, limit))
    return PassContext(train_set=train, eval_set=load_eval_data(eval_data), run_dir=run_dir, latency_runs=latency_runs,
                       progress=True)


def checkpoint_context(checkpoint: Path, data: Path | None, eval_data: Path | None, limit: int, latency_runs: int,
                       run_dir: Path | None, needs_train: bool,
                       class_names: tuple[str, ...] | None = None, val_data: Path | None = None) -> PassContext:
    """make_context for a pass on an edgemap checkpoint: every set relabelled to the checkpoint's class order
    (`class_names`, from --classes/--labels, else its record), and their images checked against its input size.
    `val_data` (--val-data): images the model was not trained on that judge pruning's fine-tuning."""
    from edgemap.data.resolve import load_eval_data
    from edgemap.models.checkpoint import read_info

    if not Path(checkpoint).is_file():
        raise EdgemapError(f"{checkpoint}: checkpoint not found")
    info = read_info(checkpoint)
    ctx = make_context(data, eval_data, limit, latency_runs, run_dir, needs_train)
    if val_data is not None:
        ctx.val_set = load_eval_data(val_data, "val")
    names = class_names or tuple(info.class_names)
    if len(names) != info.num_classes:
        raise EdgemapError(f"{len(names)} class names given, but {checkpoint.name} predicts {info.num_classes} classes")
    ctx = relabelled(ctx, names, "--classes" if class_names else f"{checkpoint.name}'s record")
    want = (info.input_shape[1], info.input_shape[2], info.input_shape[0])
    for d in (ctx.train_set, ctx.eval_set, ctx.val_set):
        if d is not None and tuple(d.images.shape[1:]) != want:
            raise EdgemapError(f"{d.source}: images are {'x'.join(map(str, d.images.shape[1:]))} (HxWxC), "
                               f"{checkpoint.name} takes {'x'.join(map(str, want))}")
    return ctx


def relabelled(ctx: PassContext, names: tuple[str, ...], origin: str = "the model") -> PassContext:
    """The context with its training, evaluation and validation data relabelled to `names` (the model's order) by
    class name."""
    from edgemap.data.classes import align_to_model

    def align(d):  # noqa: ANN001, ANN202 - ImageSet | None
        return None if d is None else align_to_model(d, names, origin)

    return dataclasses.replace(ctx, train_set=align(ctx.train_set), eval_set=align(ctx.eval_set),
                               val_set=align(ctx.val_set))


def onnx_context(model: Path, data: Path | None, eval_data: Path | None, preprocess: str | None,
                 latency_runs: int, class_names: tuple[str, ...] | None = None,
                 val_data: Path | None = None) -> PassContext:
    """The context of a pass on an .onnx file: its own input shape; with --preprocess, the user's data fed that way;
    the data relabelled to the model's class order (--classes/--labels, else the file's metadata) when it is known.

    Without --preprocess, images are fed as to the shipped CIFAR-10 models, which only fits a 3x32x32 input."""
    from edgemap.data.classes import onnx_class_names

    ctx = _onnx_context(model, data, eval_data, preprocess, latency_runs, val_data)
    names = class_names or onnx_class_names(model)
    return relabelled(ctx, names) if names else ctx


def _onnx_context(model: Path, data: Path | None, eval_data: Path | None, preprocess: str | None,
                  latency_runs: int, val_data: Path | None = None) -> PassContext:
    from edgemap.commands.evaluate import load_user_data
    from edgemap.compress.calibration import model_input_shape
    from edgemap.data.preprocess import parse_preprocess
    from edgemap.runtime.formats import check_onnx_file

    check_onnx_file(model)
    shape = tuple(model_input_shape(model)[1][1:])
    if preprocess is None:
        if shape != (3, 32, 32):
            raise EdgemapError(f"{model.name} takes {'x'.join(str(d) for d in shape)} inputs: give --preprocess with "
                               "--data / --eval-data (your images, fed as the model expects)")
        from edgemap.data.resolve import load_eval_data

        return dataclasses.replace(make_context(data, eval_data, 0, latency_runs, None, False), input_shape=shape,
                                   val_set=load_eval_data(val_data, "val") if val_data else None)
    spec = parse_preprocess(preprocess)
    if data is None and eval_data is None:
        raise EdgemapError("--preprocess says how --data / --eval-data images become inputs; give at least one of them")
    return PassContext(train_set=load_user_data(data, "train", spec) if data else None,
                       eval_set=load_user_data(eval_data, "test", spec) if eval_data else None,
                       val_set=load_user_data(val_data, "val", spec) if val_data else None, latency_runs=latency_runs,
                       progress=True, norm=spec, input_shape=shape)
