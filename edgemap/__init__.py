"""edgemap: map deep-learning models onto edge devices.

The host half (train, compress, convert) needs torch; the edge half (runtime, deploy)
must import with numpy + onnxruntime alone, so nothing heavy is imported here.
"""

__version__ = "0.1.0"
