"""Tiny models in every backend's format, converted once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The `tiny` zoo model (seed-0 weights) as .onnx, OpenVINO .xml and .tflite, plus a fixed-batch .onnx."""
    from edgemap.convert.api import convert
    from edgemap.convert.onnx_export import export_onnx
    from edgemap.convert.source import open_source

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("tiny_models")
    src = open_source("zoo:tiny")
    paths = {
        "onnxruntime": convert(src, "onnx", folder / "tiny.onnx", parity_n=64).path,
        "openvino": convert(src, "openvino", folder / "tiny.xml", parity_n=64).path,
        "litert": convert(src, "litert", folder / "tiny.tflite", parity_n=64).path,
    }
    paths["fixed_batch"] = export_onnx(src.model, folder / "tiny_b2.onnx", dynamic_batch=False)
    paths["reference"] = src
    return paths
