"""PyTorch -> ONNX export lives in edgemap.models.onnx_export (compression passes export too, and may not import
convert); this name stays for callers of the conversion API."""

from edgemap.models.onnx_export import EXPORTER_KEYS, INPUT_NAME, OUTPUT_NAME, export_onnx, strip_exporter_metadata

__all__ = ["EXPORTER_KEYS", "INPUT_NAME", "OUTPUT_NAME", "export_onnx", "strip_exporter_metadata"]
