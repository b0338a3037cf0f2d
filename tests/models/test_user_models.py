"""User models: .onnx, entry point + safetensors, torch.export .pt2 — description, ONNX, torch module, errors."""

import json
import textwrap
import zipfile

import numpy as np
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import save_file

from edgemap.convert.onnx_export import export_onnx
from edgemap.errors import EdgemapError
from edgemap.models.sources import is_user_model, load_user_model, load_user_model_ref

torch.set_num_threads(1)

NET_SOURCE = textwrap.dedent('''
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self, in_ch=3, width=8, classes=5, size=12):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(in_ch, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                                          nn.MaxPool2d(2))
            self.fc = nn.Linear(width * (size // 2) ** 2, classes)

        def forward(self, x):
            return self.fc(torch.flatten(self.features(x), 1))

    def build():
        return Net()

    def build_with_shape():
        net = Net(in_ch=1, size=28, classes=4)
        net.input_shape = (1, 28, 28)
        return net

    def build_wide():
        return Net(width=16)

    def not_a_model():
        return 42

    def broken():
        raise ValueError("width must be even")
''')


@pytest.fixture
def netfile(tmp_path):
    path = tmp_path / "usernet.py"
    path.write_text(NET_SOURCE)
    return path


def _weights(tmp_path, module, name="w.safetensors"):
    path = tmp_path / name
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))
    return path


def _randomise_bn(module):
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)


def test_entry_point_file_with_weights_loads_describes_and_exports(tmp_path, netfile):
    torch.manual_seed(0)
    original = load_user_model(f"{netfile}:build", input_shape=(3, 12, 12)).module
    _randomise_bn(original)
    weights = _weights(tmp_path, original)
    model = load_user_model(f"{netfile}:build", weights, input_shape=(3, 12, 12))
    info = model.info
    assert (info.format, info.input_shape, info.num_classes, info.layout, info.channels) == ("torch", (3, 12, 12), 5, "nchw", 3)
    x = torch.randn(4, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(model.torch_module()(x), original.eval()(x))
    onnx_path = model.export_onnx(tmp_path / "net.onnx")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    assert np.abs(got - original(x).detach().numpy()).max() < 1e-4
    assert load_user_model_ref(model.to_ref()).info == info


def test_entry_point_module_form_is_found_from_the_current_directory(tmp_path, netfile, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = load_user_model("usernet:build_with_shape")
    assert model.info.input_shape == (1, 28, 28) and model.info.num_classes == 4 and model.info.weights is None
    out = model.session().run(np.zeros((3, 1, 28, 28), np.float32))
    assert out.shape == (3, 4)


@pytest.mark.parametrize("suffix, message", [
    (":nothing", "usernet.py has no attribute 'nothing'"),
    (":not_a_model", "the builder returned a int, not a torch.nn.Module"),
    (":broken", "calling the builder failed (ValueError: width must be even)"),
    (":build", "input shape unknown"),
])
def test_entry_point_errors_are_one_line(netfile, suffix, message):
    with pytest.raises(EdgemapError) as err:
        load_user_model(f"{netfile}{suffix}")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_entry_point_that_does_not_import(tmp_path):
    bad = tmp_path / "badnet.py"
    bad.write_text("import numpy\nimport no_such_package_xyz\n")
    with pytest.raises(EdgemapError, match=r"badnet.py:build: cannot import .*No module named 'no_such_package_xyz'"):
        load_user_model(f"{bad}:build")
    with pytest.raises(EdgemapError, match="nosuchpkg_abc.mod:build: cannot import nosuchpkg_abc.mod"):
        load_user_model("nosuchpkg_abc.mod:build")
    with pytest.raises(EdgemapError, match="missing.py: entry-point file not found"):
        load_user_model(f"{tmp_path}/missing.py:build")


def test_weights_that_do_not_match_say_which_tensors(tmp_path, netfile):
    wide = load_user_model(f"{netfile}:build_wide", input_shape=(3, 12, 12)).module
    weights = _weights(tmp_path, wide)
    with pytest.raises(EdgemapError) as err:
        load_user_model(f"{netfile}:build", weights, input_shape=(3, 12, 12))
    msg = str(err.value)
    assert msg.startswith(f"{weights}: weights do not match the architecture of {netfile}:build")
    assert "features.0.weight is (16, 3, 3, 3) in the file, (8, 3, 3, 3) in the model" in msg
    partial = tmp_path / "partial.safetensors"
    save_file({"fc.bias": torch.zeros(5)}, str(partial))
    with pytest.raises(EdgemapError, match=r"8 missing \(features.0.weight, features.0.bias, features.1.weight, ...\)"):
        load_user_model(f"{netfile}:build", partial, input_shape=(3, 12, 12))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not safetensors at all")
    with pytest.raises(EdgemapError, match="junk.safetensors: not a readable safetensors file"):
        load_user_model(f"{netfile}:build", junk, input_shape=(3, 12, 12))


def test_model_that_rejects_the_input_shape(netfile):
    with pytest.raises(EdgemapError, match=r"does not run on input of shape \(2, 3, 20, 20\)"):
        load_user_model(f"{netfile}:build", input_shape=(3, 20, 20))


def _tiny_gray():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()


def test_onnx_model_is_described_run_and_converted_to_torch(tmp_path):
    net = _tiny_gray()
    path = export_onnx(net, tmp_path / "gray.onnx", (1, 28, 28))
    model = load_user_model(path)
    assert model.info.to_dict() | {"source": None} == {
        "source": None, "format": "onnx", "input_shape": [1, 28, 28], "num_classes": 3, "layout": "nchw",
        "input_dtype": "float32", "fixed_batch": None, "weights": None}
    x = np.random.default_rng(0).standard_normal((5, 1, 28, 28)).astype(np.float32)
    ref = net(torch.from_numpy(x)).detach().numpy()
    assert np.abs(model.session().run(x) - ref).max() < 1e-5
    assert np.abs(model.torch_module()(torch.from_numpy(x)).detach().numpy() - ref).max() < 1e-5
    copy = model.export_onnx(tmp_path / "copy.onnx")
    assert copy.read_bytes() == path.read_bytes()


def test_nhwc_onnx_input_is_recognised(tmp_path):
    class Nhwc(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _tiny_gray()

        def forward(self, x):
            return self.net(x.permute(0, 3, 1, 2))

    model = load_user_model(export_onnx(Nhwc().eval(), tmp_path / "nhwc.onnx", (28, 28, 1)))
    assert model.info.layout == "nhwc" and model.info.channels == 1 and model.info.image_hw == (28, 28)


@pytest.fixture
def pt2_file(tmp_path):
    net = _tiny_gray()
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(net, (torch.zeros(2, 1, 28, 28),), dynamic_shapes=({0: batch},))
    path = tmp_path / "gray.pt2"
    torch.export.save(program, str(path))
    return path, net


def test_pt2_program_loads_runs_and_exports(tmp_path, pt2_file):
    path, net = pt2_file
    model = load_user_model(path)
    assert (model.info.format, model.info.input_shape, model.info.num_classes, model.info.fixed_batch) == ("pt2", (1, 28, 28), 3, None)
    x = torch.randn(5, 1, 28, 28)
    assert torch.allclose(model.torch_module()(x), net(x), atol=1e-6)
    assert np.allclose(model.session().run(x.numpy()), net(x).detach().numpy(), atol=1e-6)
    onnx_path = model.export_onnx(tmp_path / "from_pt2.onnx")
    assert load_user_model(onnx_path).info.input_shape == (1, 28, 28)


def _rewrite_versions(src, dst, torch_version, schema_major=None):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("/models/model.json"):
                meta = json.loads(data)
                meta["torch_version"] = torch_version
                if schema_major is not None:
                    meta["schema_version"]["major"] = schema_major
                data = json.dumps(meta).encode()
            zout.writestr(item, data)


def test_pt2_from_a_newer_torch_says_which_versions(tmp_path, pt2_file):
    newer = tmp_path / "newer.pt2"
    _rewrite_versions(pt2_file[0], newer, "9.1.0", schema_major=99)
    with pytest.raises(EdgemapError) as err:
        load_user_model(newer)
    msg = str(err.value)
    assert "newer.pt2: made by a newer torch 9.1.0 (export schema 99." in msg and f"this is torch {torch.__version__}" in msg
    same_schema = tmp_path / "same_schema.pt2"
    _rewrite_versions(pt2_file[0], same_schema, "9.1.0")
    assert load_user_model(same_schema).info.num_classes == 3  # a newer torch with the same schema still loads


def test_corrupt_and_wrong_format_files(tmp_path, pt2_file):
    not_zip = tmp_path / "x.pt2"
    not_zip.write_bytes(b"\x00" * 100)
    with pytest.raises(EdgemapError, match="x.pt2: not a .pt2 archive"):
        load_user_model(not_zip)
    truncated = tmp_path / "t.pt2"
    truncated.write_bytes(pt2_file[0].read_bytes()[:-200])
    with pytest.raises(EdgemapError, match="t.pt2: not a"):
        load_user_model(truncated)
    fake_onnx = tmp_path / "fake.onnx"
    fake_onnx.write_bytes(b"PK\x03\x04 this is a zip, not onnx")
    with pytest.raises(EdgemapError, match="fake.onnx: expected a onnx model"):
        load_user_model(fake_onnx)
    with pytest.raises(EdgemapError, match="model.h5: not a user model"):
        load_user_model("model.h5")
    assert is_user_model("a.onnx") and is_user_model("pkg.mod:build") and not is_user_model("ckpt.safetensors")
