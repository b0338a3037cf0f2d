"""`edgemap models`: the zoo as a table."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def list_models(include_test: bool = False) -> None:
    """Print every registered model with parameters and MACs at batch 1."""
    from edgemap.models import stats, zoo

    table = Table(title="edgemap model zoo (input 3x32x32, 10 classes)")
    for col in ("name", "params", "MACs", "description"):
        table.add_column(col, justify="right" if col in ("params", "MACs") else "left")
    for name in zoo.names(include_test):
        model = zoo.build(name)
        table.add_row(name, f"{stats.count_parameters(model):,}", f"{stats.count_macs(model) / 1e6:.2f} M",
                      zoo.entry(name).description)
    Console().print(table)
