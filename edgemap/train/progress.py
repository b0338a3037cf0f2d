"""A training progress bar (loss, accuracy, images/s, ETA) that degrades to log lines off a terminal."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn


class EpochProgress:
    """One bar over all remaining steps; prints a summary line per epoch."""

    def __init__(self, epochs: int, steps_per_epoch: int, enabled: bool = True, start_epoch: int = 0) -> None:
        self.console = Console(stderr=True)
        self.enabled = enabled
        self.live = enabled and sys.stderr.isatty()
        self.epochs = epochs
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
            TextColumn("loss {task.fields[loss]:.3f}  acc {task.fields[acc]:.1f}%  {task.fields[ips]:.0f} img/s"),
            TimeRemainingColumn(), console=self.console, disable=not self.live,
        )
        self.epoch = start_epoch + 1
        self.task = self.progress.add_task("train", total=(epochs - start_epoch) * steps_per_epoch,
                                           epoch=self.epoch, epochs=epochs, loss=0.0, acc=0.0, ips=0.0)
        if self.live:
            self.progress.start()

    def step(self, loss: float, acc: float, ips: float) -> None:
        self.progress.update(self.task, advance=1, loss=loss, acc=acc, ips=ips, epoch=self.epoch)

    def end_epoch(self, record: dict) -> None:
        if self.enabled:
            extra = f"  val {record['val_top1']:.2f}%" if "val_top1" in record else ""
            self.progress.console.print(
                f"epoch {record['epoch']}/{self.epochs}  loss {record['loss']:.4f}  train {record['train_top1']:.2f}%"
                f"{extra}  {record['images_per_s']:.0f} img/s  {record['wall_s']:.0f}s")
        self.epoch += 1

    def close(self) -> None:
        if self.live:
            self.progress.stop()
