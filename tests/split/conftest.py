"""Tiny ONNX models built node by node (no torch: fast, and like a user's file), tiny images, and a
tail server running in a thread on a free port."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgemap.data.dataset import ImageSet

CLASSES = ("left", "right", "middle")


def _init(name: str, shape: tuple, rng: np.random.Generator) -> onnx.TensorProto:
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.5).astype(np.float32), name)


def _conv(name: str, x: str, cin: int, cout: int, rng: np.random.Generator, inits: list) -> onnx.NodeProto:
    inits += [_init(f"{name}.w", (cout, cin, 3, 3), rng), _init(f"{name}.b", (cout,), rng)]
    return helper.make_node("Conv", [x, f"{name}.w", f"{name}.b"], [name], pads=[1, 1, 1, 1])


def _save(nodes: list, inits: list, path: Path, channels: int, hw: int, out_shape: list) -> Path:
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", channels, hw, hw])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", *out_shape])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _head(nodes: list, x: str, cin: int, inits: list, rng: np.random.Generator) -> list:
    nodes += [helper.make_node("GlobalAveragePool", [x], ["gap"]), helper.make_node("Flatten", ["gap"], ["flat"]),
              helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["scores"], transB=1)]
    inits += [_init("fc.w", (len(CLASSES), cin), rng), _init("fc.b", (len(CLASSES),), rng)]
    return nodes


def chain_model(path: Path) -> Path:
    """Grayscale 8x8 input, no BatchNorm: conv-relu-pool-conv-relu-GAP-gemm (a plain chain)."""
    rng, inits = np.random.default_rng(1), []
    nodes = [_conv("c1", "image", 1, 4, rng, inits), helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             _conv("c2", "p1", 4, 8, rng, inits), helper.make_node("Relu", ["c2"], ["r2"])]
    return _save(_head(nodes, "r2", 8, inits, rng), inits, path, 1, 8, [len(CLASSES)])


def residual_model(path: Path) -> Path:
    """RGB 8x8: conv-relu, then a residual block (conv-relu-conv + skip), relu, GAP, gemm."""
    rng, inits = np.random.default_rng(2), []
    nodes = [_conv("stem", "image", 3, 4, rng, inits), helper.make_node("Relu", ["stem"], ["s"]),
             _conv("b1", "s", 4, 4, rng, inits), helper.make_node("Relu", ["b1"], ["b1r"]),
             _conv("b2", "b1r", 4, 4, rng, inits), helper.make_node("Add", ["s", "b2"], ["sum"]),
             helper.make_node("Relu", ["sum"], ["out"])]
    return _save(_head(nodes, "out", 4, inits, rng), inits, path, 3, 8, [len(CLASSES)])


def _conv1(name: str, x: str, cin: int, cout: int, rng: np.random.Generator, inits: list) -> onnx.NodeProto:
    inits += [_init(f"{name}.w", (cout, cin, 1, 1), rng), _init(f"{name}.b", (cout,), rng)]
    return helper.make_node("Conv", [x, f"{name}.w", f"{name}.b"], [name])


def inception_model(path: Path) -> Path:
    """RGB 8x8, no residual Add: stem conv-relu; an Inception block (1x1 | 1x1-3x3 | maxpool-1x1, concatenated,
    relu); a pooling; a DenseNet-style block (concat of its input and conv(input)); GAP, gemm."""
    rng, inits = np.random.default_rng(4), []
    nodes = [_conv("stem", "image", 3, 4, rng, inits), helper.make_node("Relu", ["stem"], ["s"]),
             _conv1("i1", "s", 4, 2, rng, inits), _conv1("i2a", "s", 4, 2, rng, inits), _conv("i2b", "i2a", 2, 3, rng, inits),
             helper.make_node("MaxPool", ["s"], ["i3p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             _conv1("i3", "i3p", 4, 2, rng, inits),
             helper.make_node("Concat", ["i1", "i2b", "i3"], ["cat"], axis=1), helper.make_node("Relu", ["cat"], ["inc"]),
             helper.make_node("MaxPool", ["inc"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),
             _conv("d1", "pool", 7, 3, rng, inits), helper.make_node("Relu", ["d1"], ["d1r"]),
             helper.make_node("Concat", ["pool", "d1r"], ["dense"], axis=1)]
    return _save(_head(nodes, "dense", 10, inits, rng), inits, path, 3, 8, [len(CLASSES)])


def two_branch_model(path: Path) -> Path:
    """Two convolutions of the input added into the output: no tensor alone separates input from output."""
    rng, inits = np.random.default_rng(3), []
    nodes = [_conv("a", "image", 3, 2, rng, inits), _conv("b", "image", 3, 2, rng, inits),
             helper.make_node("Add", ["a", "b"], ["scores"])]
    return _save(nodes, inits, path, 3, 8, [2, 8, 8])


def tiny_images(n: int = 24, channels: int = 1, hw: int = 8, seed: int = 0) -> ImageSet:
    rng = np.random.default_rng(seed)
    return ImageSet(rng.integers(0, 256, (n, hw, hw, channels), dtype=np.uint8), rng.integers(0, len(CLASSES), n),
                    CLASSES, "tiny random images")


@pytest.fixture(scope="session")
def split_export(tmp_path_factory) -> dict:  # noqa: ANN001
    """The chain model profiled (host/host) and exported at every cut: paths, source, profile and images (made
    once per session: every split test module reads it, none changes it)."""
    from edgemap.split.bundle import export_bundles
    from edgemap.split.profile import profile_split, write_parts
    from edgemap.split.source import resolve_source

    root = tmp_path_factory.mktemp("split")
    src = resolve_source(str(chain_model(root / "chain.onnx")), "unit,channels=gray", root / "work")
    images = tiny_images()
    cuts, parts = write_parts(src, root / "work")
    prof = profile_split(src, images, "host", "host", root / "work", qualities=(50, 90), threads=1, codec_samples=4)
    bundles = export_bundles(src, cuts, parts, images.images, prof, root / "bundles")
    return {"root": root, "src": src, "cuts": cuts, "profile": prof, "images": images, **bundles}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(app, port: int | None = None):  # noqa: ANN001, ANN201 - ASGI app -> URL
    """Serve an ASGI app with uvicorn in a thread; yields its URL."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def helpers():  # noqa: ANN201 - namespace
    """The builders above, for tests (conftest modules are not importable under --import-mode=importlib)."""
    import types

    return types.SimpleNamespace(chain_model=chain_model, residual_model=residual_model, inception_model=inception_model,
                                 two_branch_model=two_branch_model,
                                 tiny_images=tiny_images, running=running, free_port=free_port, classes=CLASSES)
