"""How good is `edgemap estimate --backend openvino` (OpenVINO CPU plugin, latency hint) on networks it was not fitted on?

The predictor is a whole-call line over ONNX Runtime's kernels per kernel class
(edgemap/devices/kernels/backends.py), fitted on the sampled graphs `edgemap devices calibrate-backend
openvino` measured, FP32 and INT8 (the static QDQ ONNX model, which OpenVINO runs with INT8 kernels).
Validated on the 40 generated networks of estimator_families.py, 1 and 2 threads (estimator_backends.py).
An earlier version of this script fitted FP32 only, inside the benchmark, on MACs and bytes alone
(results/estimator_openvino_g480.md and the first estimator_openvino.md: 5.2 % / 16.7 % median error at 1 / 2 threads).
OpenVINO's own per-layer PERF_COUNT times are not used: see the note in backends.py.

    flock /work/notes/s2/bench.lock nice -n 5 .venv/bin/python benchmarks/estimator_openvino.py [--per-family 4] [--runs 40] [--tag NAME]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from estimator_backends import run  # noqa: E402

if __name__ == "__main__":
    run("openvino", "/tmp/edgemap-estimator-openvino")
