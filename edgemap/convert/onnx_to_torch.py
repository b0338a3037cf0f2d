"""The ONNX -> torch.fx converter lives in edgemap.models.onnx_to_torch (a user's ONNX model gets its torch form
there, and models may not import convert); this name stays for callers of the conversion API."""

from edgemap.models.onnx_to_torch import onnx_to_torch

__all__ = ["onnx_to_torch"]
