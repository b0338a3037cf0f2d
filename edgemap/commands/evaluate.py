"""`edgemap eval`: accuracy of a checkpoint on a test split, all images and exact ones, plus confusion matrix."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table


def run_eval(checkpoint: Path | None, data: Path | None, split: str = "test", show_confusion: bool = True,
             class_names: tuple[str, ...] | None = None) -> dict:
    """Evaluate a checkpoint (default: the shipped model) and print the result; returns it as a dict.
    The data is matched to the checkpoint's class order by name (`class_names` overrides the record's)."""
    from edgemap.data.classes import align_to_model
    from edgemap.data.resolve import load_eval_data
    from edgemap.errors import EdgemapError
    from edgemap.models.checkpoint import load_checkpoint
    from edgemap.models.shipped import shipped_checkpoint
    from edgemap.train.evaluate import evaluate

    path = checkpoint or shipped_checkpoint()
    model, info = load_checkpoint(path)
    ds = align_to_model(load_eval_data(data, split), class_names or info.class_names,
                        "--classes" if class_names else f"{path.name}'s record")
    if len(ds.class_names) != info.num_classes:
        raise EdgemapError(f"{ds.source}: {len(ds.class_names)} classes, but {path} predicts {info.num_classes}")
    if ds.images.shape[1:] != (info.input_shape[1], info.input_shape[2], info.input_shape[0]):
        raise EdgemapError(f"{ds.source}: images are {ds.images.shape[1:]} (HWC), the model expects {info.input_shape} (CHW)")
    result = evaluate(model, ds, info.normalization)
    console = Console()
    exact = f"{result.top1_exact:.2f}% on the {result.n_exact:,} exact images" if result.top1_exact is not None else ""
    console.print(f"[bold]{path.name}[/]: top-1 {result.top1:.2f}% on {result.n:,} images of {ds.source}; {exact}")
    if show_confusion:
        console.print(confusion_table(result.confusion, ds.class_names))
    return {**result.to_dict(), "confusion": result.confusion.tolist(), "class_names": list(ds.class_names), "data": ds.source}


def confusion_table(confusion, class_names: tuple[str, ...]) -> Table:  # noqa: ANN001 - numpy array
    """Rows are true classes, columns predictions; the diagonal is bold."""
    table = Table(title="confusion matrix (rows: true, columns: predicted)")
    table.add_column("true \\ pred")
    for name in class_names:
        table.add_column(name[:5], justify="right")
    for i, name in enumerate(class_names):
        cells = [f"[bold]{v}[/]" if i == j else str(v) for j, v in enumerate(confusion[i])]
        table.add_row(name, *cells)
    return table


# --- users' own models: .onnx, entry point + weights, .pt2 -----------------------------------------
def run_user_eval(model: str, data: Path | str | None, preprocess: str | None, weights: Path | str | None = None,
                  input_shape: tuple[int, ...] | None = None, split: str = "test", limit: int = 0,
                  sanity: int = 500, threads: int = 0, confusion: bool = True,
                  class_names: tuple[str, ...] | None = None) -> dict:
    """Evaluate a user model: class order, agreement checks, a sanity run on a subset, then the full accuracy.

    The class order is `class_names` (--classes/--labels), else what the model file carries, else the data's.

    Prints each step; returns {model, preprocess, data, agreement notes, sanity, top1, ...}.
    """
    from edgemap.data.compat import predict, require_agreement, sample, sanity_eval
    from edgemap.data.preprocess import parse_preprocess
    from edgemap.models.sources import load_user_model
    from edgemap.train.evaluate import accuracy_report

    console = Console()
    spec = parse_preprocess(preprocess)
    ds = load_user_data(data, split, spec)
    um = load_user_model(model, weights, input_shape, fallback_shape=spec.input_shape(ds.images.shape[1:3]))
    info = um.info
    ds = match_model_classes(ds, info, class_names, console)
    console.print(f"[bold]{Path(info.source).name}[/] ({info.format}): input {info.input_shape} {info.layout.upper()}, "
                  f"{info.num_classes} classes; data {ds.source}: {len(ds):,} images {ds.images.shape[1:3]}, "
                  f"{len(ds.class_names)} classes; preprocess {spec.to_string()}")
    agreement = require_agreement(info, ds, spec)
    for note in agreement.notes:
        console.print(f"  {note}")
    with um.session(threads) as session:
        check = sanity_eval(session, ds, spec, sanity, info.fixed_batch)
        console.print(f"sanity check on {check.n:,} images: top-1 {check.top1:.1f} % (chance {check.chance:.0f} %)")
        if check.hint:
            console.print(f"[yellow]hint:[/] {check.hint}")
        evalset = sample(ds, limit)
        logits = predict(session, evalset.images, spec, fixed_batch=info.fixed_batch)
    result = accuracy_report(logits.argmax(1), evalset)
    console.print(f"[bold]{Path(info.source).name}[/]: top-1 {result.top1:.2f}% on {result.n:,} images of {ds.source}")
    if confusion:
        console.print(confusion_table(result.confusion, ds.class_names))
    return {**result.to_dict(), "model": info.to_dict(), "preprocess": spec.to_dict(), "data": ds.source,
            "notes": list(agreement.notes), "sanity": check.to_dict(), "confusion": result.confusion.tolist(),
            "class_names": list(ds.class_names)}


def match_model_classes(ds, info, given: tuple[str, ...] | None, console: Console):  # noqa: ANN001, ANN201
    """The data relabelled in the model's class order: --classes/--labels, else the names the file carries."""
    from edgemap.data.classes import align_to_model, onnx_class_names
    from edgemap.errors import EdgemapError

    carried = onnx_class_names(info.source) if info.format == "onnx" else None
    names, origin = (given, "--classes") if given else (carried, Path(info.source).name)
    if names is None:
        return ds
    if len(names) != info.num_classes:
        raise EdgemapError(f"{origin} names {len(names)} classes, the model outputs {info.num_classes} scores")
    if given and carried and tuple(carried) != tuple(given):
        console.print(f"[yellow]note:[/] --classes overrides the class order the model carries ({','.join(carried)})")
    return align_to_model(ds, names, origin)


def load_user_data(data: Path | str | None, split: str, spec):  # noqa: ANN001, ANN201 - PreprocessSpec -> ImageSet
    """--data as for run_eval; an image folder of mixed sizes is resized to the spec's resize when it has one."""
    from edgemap.data.image_folder import load_image_folder
    from edgemap.data.resolve import load_eval_data

    path = Path(data) if data is not None else None
    if spec.resize and path is not None and path.is_dir():
        root = path / split if (path / split).is_dir() else path
        if any(p.is_dir() for p in root.iterdir()) and not any(root.glob("*.npz")):
            return load_image_folder(root, size=spec.resize)  # the same pillow resize the spec applies
    return load_eval_data(path, split)


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """'3,224,224' or '3x224x224' -> (3, 224, 224)."""
    from edgemap.errors import EdgemapError

    if not text:
        return None
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise EdgemapError(f"--input-shape {text!r}: give sizes like 3,224,224") from None
    if not shape or min(shape) < 1:
        raise EdgemapError(f"--input-shape {text!r}: sizes must be positive")
    return shape


def eval_command(model: str | None, data: Path | None, split: str, confusion: bool, weights: Path | None = None,
                 preprocess: str | None = None, input_shape: str | None = None, limit: int = 0,
                 sanity: int = 500, threads: int = 0, classes: str | None = None, labels: Path | None = None) -> dict:
    """`edgemap eval`: zoo checkpoints (default: the shipped model) through run_eval, user models through run_user_eval."""
    from edgemap.data.classes import class_names_option
    from edgemap.errors import EdgemapError
    from edgemap.models.sources import is_user_model

    names = class_names_option(classes, labels)
    if model is not None and is_user_model(model):
        result = run_user_eval(model, data, preprocess, weights, parse_shape(input_shape), split, limit, sanity,
                               threads, confusion, names)
    elif weights or preprocess or input_shape:
        raise EdgemapError("--weights, --preprocess and --input-shape are for user models (.onnx, .pt2, module:function)")
    else:
        result = run_eval(Path(model) if model else None, data, split, confusion, names)
    from edgemap.commands.runs import record_eval

    record_eval(result, model, threads)
    return result
