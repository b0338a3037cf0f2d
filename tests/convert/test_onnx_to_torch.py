"""ONNX -> torch: numerical parity with onnxruntime, real nn layers, prunable, clear errors."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from edgemap.convert.onnx_export import export_onnx
from edgemap.convert.onnx_to_torch import onnx_to_torch
from edgemap.errors import EdgemapError

torch.set_num_threads(1)
RNG = np.random.default_rng(0)


class ResidualSE(nn.Module):
    """Residual add, depthwise conv, ReLU6, Hardswish, squeeze-excite multiply, concat, avg/max pooling."""

    def __init__(self, in_ch: int = 3, classes: int = 7) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_ch, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU6(), nn.Hardswish())
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 8, 1), nn.Sigmoid())
        self.branch = nn.Conv2d(8, 4, 1)
        self.pool = nn.AvgPool2d(3, 2, padding=1)
        self.fc = nn.Linear(12 * 4 * 4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = self.dw(x)
        x = x + y * self.se(y)
        x = torch.cat([x, self.branch(x)], dim=1)
        x = nn.functional.max_pool2d(self.pool(x), 2)
        return self.fc(x.view(x.size(0), -1))


def ort_run(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def assert_parity(path, x, atol=1e-4):
    gm = onnx_to_torch(path)
    with torch.no_grad():
        got = gm(torch.from_numpy(x)).numpy()
    want = ort_run(path, x)
    assert got.shape == want.shape
    assert np.abs(got - want).max() < atol, np.abs(got - want).max()
    return gm


@pytest.mark.parametrize("in_ch, size", [(3, 16), (1, 16)])
def test_exported_cnn_converts_to_real_layers_with_parity(tmp_path, in_ch, size):
    torch.manual_seed(0)
    path = export_onnx(ResidualSE(in_ch).eval(), tmp_path / "m.onnx", (in_ch, size, size))
    x = RNG.standard_normal((3, in_ch, size, size)).astype(np.float32)
    gm = assert_parity(path, x)
    kinds = {type(m) for m in gm.modules()}
    assert {nn.Conv2d, nn.Linear, nn.ReLU6, nn.Hardswish, nn.Sigmoid, nn.AvgPool2d, nn.MaxPool2d} <= kinds
    assert "torch.flatten" in gm.code  # the view(N, -1) follows channel counts after pruning


class SmallResNet(nn.Module):
    """Conv-BN-ReLU stem, a residual block, pooling, flatten, two linear layers."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2))
        self.block = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                   nn.Conv2d(16, 16, 3, padding=1, groups=4))
        self.head = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(32 * 4 * 4, 24), nn.ReLU(), nn.Linear(24, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return self.head(x + self.block(x))


def _prune(model: nn.Module) -> list[int]:
    import torch_pruning as tp

    fc = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    pruner = tp.pruner.BasePruner(model, torch.randn(1, 3, 16, 16), importance=tp.importance.GroupMagnitudeImportance(p=2),
                                  pruning_ratio=0.5, ignored_layers=[fc])
    pruner.step()
    return [m.weight.shape[0] for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def test_converted_model_prunes_like_the_original_with_torch_pruning(tmp_path):
    torch.manual_seed(0)
    original = SmallResNet().eval()
    gm = onnx_to_torch(export_onnx(original, tmp_path / "m.onnx", (3, 16, 16)))
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(gm(x), original(x), atol=1e-5)
    widths = _prune(gm)
    assert widths == _prune(original)
    assert widths[:4] == [8, 8, 8, 16] and widths[-1] == 5  # halved, classifier untouched
    with torch.no_grad():
        assert gm(x).shape == (2, 5)


def _graph_model(nodes, inits, in_shape, out_name="y", opset=13):
    graph = helper.make_graph(nodes, "handmade", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [None, None])],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def test_handmade_graph_with_batchnorm_gemm_matmul_clip_and_shape_chain(tmp_path):
    """The forms other exporters emit: unfused BatchNormalization, Shape/Gather/Concat -> Reshape,
    Gemm with transB=0 and alpha/beta, MatMul + Add, Clip(0, 6), asymmetric pads, softmax."""
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1"], ["c1"], pads=[0, 0, 1, 1], strides=[2, 2], name="conv1"),
        n("BatchNormalization", ["c1", "g", "b", "m", "v"], ["bn"], epsilon=1e-3, name="bn1"),
        n("Clip", ["bn", "zero", "six"], ["r6"], name="relu6"),
        n("MaxPool", ["r6"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        n("Shape", ["p"], ["shp"]), n("Gather", ["shp", "idx0"], ["bs"], axis=0),
        n("Unsqueeze", ["bs", "ax0"], ["bs1"]), n("Concat", ["bs1", "minus1"], ["tgt"], axis=0),
        n("Reshape", ["p", "tgt"], ["flat"], name="flatten"),
        n("Gemm", ["flat", "w2", "b2"], ["h"], transB=0, alpha=0.5, beta=2.0, name="fc1"),
        n("LeakyRelu", ["h"], ["a"], alpha=0.1),
        n("MatMul", ["a", "w3"], ["mm"], name="fc2"), n("Add", ["mm", "b3"], ["logits"]),
        n("Softmax", ["logits"], ["y"], axis=1),
    ]
    inits = {"w1": f32(6, 3, 3, 3), "g": f32(6), "b": f32(6), "m": f32(6), "v": np.abs(f32(6)) + 0.5,
             "zero": np.float32(0), "six": np.float32(6), "idx0": np.int64(0), "ax0": np.array([0], np.int64),
             "minus1": np.array([-1], np.int64), "w2": f32(6 * 4 * 4, 10), "b2": f32(10), "w3": f32(10, 4), "b3": f32(4)}
    path = tmp_path / "hand.onnx"
    onnx.save(_graph_model(nodes, inits, ["N", 3, 16, 16]), path)
    gm = assert_parity(path, f32(5, 3, 16, 16), atol=1e-5)
    kinds = [type(m) for m in gm.modules()]
    assert nn.BatchNorm2d in kinds and nn.ReLU6 in kinds and kinds.count(nn.Linear) == 2
    assert "Shape" not in gm.code and "gather" not in gm.code.lower()


def test_flatten_global_pool_and_same_padding(tmp_path):
    n = helper.make_node
    nodes = [n("Conv", ["x", "w"], ["c"], auto_pad="SAME_UPPER", strides=[2, 2], name="conv_same"),
             n("AveragePool", ["c"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1),
             n("GlobalMaxPool", ["a"], ["g"]), n("Flatten", ["g"], ["f"], axis=1),
             n("Gemm", ["f", "w2"], ["y"], transB=1)]
    path = tmp_path / "same.onnx"
    onnx.save(_graph_model(nodes, {"w": f32(5, 1, 4, 4), "w2": f32(3, 5)}, [2, 1, 11, 11]), path)
    assert_parity(path, f32(2, 1, 11, 11), atol=1e-5)


def test_unsupported_operator_names_type_and_node(tmp_path):
    n = helper.make_node
    nodes = [n("Conv", ["x", "w"], ["c"], name="conv"), n("LpNormalization", ["c"], ["y"], name="my_norm_layer")]
    path = tmp_path / "lp.onnx"
    onnx.save(_graph_model(nodes, {"w": f32(2, 1, 3, 3)}, [1, 1, 8, 8]), path)
    with pytest.raises(EdgemapError) as err:
        onnx_to_torch(path)
    msg = str(err.value)
    assert "lp.onnx" in msg and "LpNormalization node 'my_norm_layer'" in msg and "not supported" in msg


def test_computed_conv_weight_and_corrupt_file_are_clear_errors(tmp_path):
    n = helper.make_node
    nodes = [n("Relu", ["x"], ["wr"]), n("Conv", ["x", "wr"], ["y"], name="weird_conv")]
    path = tmp_path / "w.onnx"
    onnx.save(_graph_model(nodes, {}, [1, 1, 3, 3]), path)
    with pytest.raises(EdgemapError, match="Conv node 'weird_conv' to PyTorch: the weight is computed at run time"):
        onnx_to_torch(path)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(path.read_bytes()[:20])
    with pytest.raises(EdgemapError, match="bad.onnx"):
        onnx_to_torch(bad)
