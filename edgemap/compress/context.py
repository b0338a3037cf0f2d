"""What a pass gets besides its config: the data sets, where to keep resumable state, how hard to measure."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgemap.data.dataset import ImageSet
from edgemap.data.transforms import Normalization


@dataclass
class PassContext:
    """Shared inputs of the passes in one run.

    train_set: fine-tuning / distillation / calibration source; eval_set: accuracy before -> after
    (None: accuracy is not measured); run_dir: resumable training state (None: not resumable);
    latency_runs: timed batch-1 runs per model (0: latency is not measured); norm and input_shape
    say how images feed an ONNX model (a checkpoint's sidecar says it for torch passes; a user model's
    PreprocessSpec serves too). calib_set: calibration images when they differ from train_set (a search without
    training data holds some evaluation images out); source: the Artifact a pass runs on (set by the recipe runner);
    data_key: what identifies the data (part of the cache key of passes that need data); val_set: images the
    model was not trained on that judge pruning's fine-tuning (None: some training images are held out instead).
    """

    train_set: ImageSet | None = None
    eval_set: ImageSet | None = None
    run_dir: Path | None = None
    latency_runs: int = 200
    threads: int = 0
    progress: bool = False
    norm: Normalization = field(default_factory=Normalization)  # how images are fed to ONNX inputs
    input_shape: tuple[int, int, int] = (3, 32, 32)
    calib_set: ImageSet | None = None
    source: Any = None  # edgemap.core.artifact.Artifact
    data_key: str = ""
    parity_n: int = 256
    val_set: ImageSet | None = None

    def calibration_images(self) -> ImageSet | None:
        """The images INT8 calibration draws from: calib_set, else train_set (None: the caller picks a default)."""
        return self.calib_set if self.calib_set is not None else self.train_set

    def sub_run_dir(self, name: str) -> Path | None:
        """A per-pass folder inside run_dir, so two passes never share training state."""
        return None if self.run_dir is None else Path(self.run_dir) / name
