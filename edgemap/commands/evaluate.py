"""`edgemap eval`: accuracy of a checkpoint on a test split, all images and exact ones, plus confusion matrix."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table


def run_eval(checkpoint: Path | None, data: Path | None, split: str = "test", show_confusion: bool = True) -> dict:
    """Evaluate a checkpoint (default: the shipped model) and print the result; returns it as a dict."""
    from edgemap.data.resolve import load_eval_data
    from edgemap.errors import EdgemapError
    from edgemap.models.checkpoint import load_checkpoint
    from edgemap.models.shipped import shipped_checkpoint
    from edgemap.train.evaluate import evaluate

    path = checkpoint or shipped_checkpoint()
    model, info = load_checkpoint(path)
    ds = load_eval_data(data, split)
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
    return result.to_dict()


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
