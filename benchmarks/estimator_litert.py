"""How good is `edgemap estimate --backend litert` (LiteRT interpreter, XNNPACK, CPU) on networks it was not fitted on?

LiteRT's Python interpreter gives no per-op times, so its predictor is a whole-call line over ONNX
Runtime's kernels per kernel class (edgemap/devices/kernels/backends.py), fitted on the sampled graphs
`edgemap devices calibrate-backend litert` measured. Validated here on the 40 generated networks of
estimator_families.py, FP32 and INT8 (ai-edge-quantizer static recipe), 1 and 2 threads (see
estimator_backends.py). Conversion (litert-torch, seconds per network) is cached and untimed:

    nice -n 5 .venv/bin/python benchmarks/estimator_litert.py --build-only
    flock /work/notes/s2/bench.lock nice -n 5 .venv/bin/python benchmarks/estimator_litert.py [--per-family 4] [--runs 40] [--tag NAME]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from estimator_backends import run  # noqa: E402

if __name__ == "__main__":
    run("litert", "/tmp/edgemap-estimator-litert")
