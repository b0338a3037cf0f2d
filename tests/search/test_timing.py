"""Side-by-side timing of the map's finalists: repeated rounds, the median round counts."""

from pathlib import Path
import statistics

import numpy as np
import torch

from edgemap.convert.onnx_export import export_onnx
from edgemap.models import zoo
from edgemap.search.timing import time_models


def test_rounds_keep_the_median_round_and_every_rounds_p50(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = export_onnx(zoo.build("tiny").eval(), tmp_path / "tiny.onnx", (3, 32, 32))
    x1 = np.zeros((1, 3, 32, 32), np.float32)
    rows = {"a": ("onnxruntime", str(path), 1), "b": ("onnxruntime", str(path), 1)}
    out = time_models(rows, x1, runs=20, warmup=2, rounds=3)
    for stats in out.values():
        assert len(stats["p50_ms_rounds"]) == 3 and stats["n"] == 20
        assert stats["p50_ms"] == statistics.median(stats["p50_ms_rounds"])
    assert "p50_ms_rounds" not in time_models(rows, x1, runs=5, warmup=1)["a"]
