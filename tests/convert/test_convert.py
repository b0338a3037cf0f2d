"""Conversions to ONNX / OpenVINO / LiteRT pass the parity gate, and refuse (writing nothing) when they should not."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgemap.convert.api import convert
from edgemap.convert.parity import Tolerance
from edgemap.convert.source import Source, open_source
from edgemap.errors import EdgemapError
from edgemap.runtime.registry import load_session

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny() -> Source:
    return open_source("zoo:tiny")


def _no_files_left(folder: Path) -> None:
    assert [p.name for p in folder.iterdir()] == [], "a refused conversion left files behind"


@pytest.mark.parametrize("to, precision, name", [
    ("onnx", "fp32", "m.onnx"), ("openvino", "fp32", "m.xml"), ("openvino", "fp16", "m16.xml"), ("litert", "fp32", "m.tflite"),
])
def test_float_conversions_pass_parity(tiny: Source, tmp_path: Path, to: str, precision: str, name: str) -> None:
    res = convert(tiny, to, tmp_path / name, precision=precision, parity_n=64)
    assert res.path.is_file() and res.size_bytes >= res.path.stat().st_size > 0
    assert res.parity.passed and res.parity.n == 64 and res.parity.top1_agreement == 1.0
    assert res.parity.max_abs_diff < (1e-3 if precision == "fp32" else 5e-2)
    assert res.parity.reference_top1 is not None  # 3x32x32 models are checked on the shipped sample's real images
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp files remain


def test_onnx_export_is_simplified_single_file_with_dynamic_batch(tiny: Source, tmp_path: Path) -> None:
    import onnx

    res = convert(tiny, "onnx", tmp_path / "m.onnx", opset=20, parity_n=16)
    model = onnx.load(str(res.path))
    assert model.opset_import[0].version == 20 and res.notes == ["simplified with onnxslim"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch axis
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # weights inside, no .onnx.data
    with pytest.raises(EdgemapError, match="could not write opset 11 for this model \\(it wrote 18\\)"):
        convert(tiny, "onnx", tmp_path / "old.onnx", opset=11, parity_n=16)
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_parity_failure_refuses_and_writes_nothing(tiny: Source, tmp_path: Path) -> None:
    strict = Tolerance(max_abs_diff=1e-9, min_agreement=1.0)  # FP16 weights cannot meet 1e-9
    with pytest.raises(EdgemapError, match=r"parity check failed \(max \|diff\| .* top-1 agreement .*; no file written"):
        convert(tiny, "openvino", tmp_path / "m.xml", precision="fp16", parity_n=32, tolerance=strict)
    _no_files_left(tmp_path)
    with pytest.raises(EdgemapError, match="parity check failed"):
        convert(tiny, "litert", tmp_path / "q.tflite", precision="int8", calibration_n=8, parity_n=32,
                tolerance=Tolerance(max_abs_diff=1e-9, min_agreement=0.0))
    _no_files_left(tmp_path)


def test_int8_openvino_via_nncf_and_from_a_qdq_onnx(tiny: Source, tmp_path: Path) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    loose = Tolerance(None, 0.5)  # random weights: near-tied logits, so INT8 flips some top-1 picks
    res = convert(tiny, "openvino", tmp_path / "n.xml", precision="int8", calibration_n=16, parity_n=32, tolerance=loose)
    assert "NNCF" in res.notes[0] and res.precision == "int8"
    fp32 = convert(tiny, "onnx", tmp_path / "f.onnx", parity_n=8).path
    calib = iter([{"input": np.random.default_rng(i).standard_normal((1, 3, 32, 32), dtype=np.float32)} for i in range(8)])

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict | None:
            return next(calib, None)

    quantize_static(str(fp32), str(tmp_path / "q.onnx"), Reader(), quant_format=QuantFormat.QDQ, per_channel=True)
    res = convert(tmp_path / "q.onnx", "openvino", tmp_path / "q.xml", precision="int8", parity_n=32)
    assert "QDQ" in res.notes[0] and res.parity.passed  # compared with the QDQ model itself
    with pytest.raises(EdgemapError, match="already an INT8 \\(QDQ\\) model"):
        convert(tmp_path / "q.onnx", "openvino", tmp_path / "q32.xml", precision="fp32", parity_n=8)


def _onnx_with(op: str, domain: str, path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 4, 4])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Neg", ["input"], ["r"], name="stem/neg"),
             helper.make_node(op, ["r"], ["logits"], name="block1/odd", domain=domain)]
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid(domain, 1)]
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=opsets, ir_version=10), str(path))
    return path


def test_unsupported_operator_names_op_layer_and_other_backends(tmp_path: Path) -> None:
    model = _onnx_with("Inverse", "com.microsoft", tmp_path / "inv.onnx")  # onnxruntime has it, OpenVINO does not
    with pytest.raises(EdgemapError, match=r"operator com\.microsoft\.Inverse in layer 'block1/odd' is not supported by "
                                           r"openvino; backends that accept this model: onnxruntime"):
        convert(model, "openvino", tmp_path / "inv.xml", parity_n=4)
    assert not list(tmp_path.glob("inv.xml")) and not list(tmp_path.glob(".inv*"))
    assert convert(model, "onnx", tmp_path / "copy.onnx", parity_n=4).parity.passed
    alien = _onnx_with("FancyOp", "com.example", tmp_path / "alien.onnx")
    with pytest.raises(EdgemapError, match=r"operator com\.example\.FancyOp in layer 'block1/odd' is not supported by "
                                           r"onnxruntime; no installed backend accepts it"):
        convert(alien, "onnx", tmp_path / "out.onnx", parity_n=4)
    assert not (tmp_path / "out.onnx").exists()


class _PoolTo2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.head_pool = nn.AdaptiveMaxPool2d(2)  # not global: LiteRT has no lowering for it
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.head_pool(self.conv(x)), 1))


def test_litert_unsupported_operator_and_global_pool_rewrite(tmp_path: Path) -> None:
    src = Source("pool2", (3, 32, 32), model=_PoolTo2().eval())
    with pytest.raises(EdgemapError, match=r"operator aten\.adaptive_max_pool2d in layer 'head_pool' is not "
                                           r"supported by LiteRT; backends that accept this model: onnxruntime, openvino"):
        convert(src, "litert", tmp_path / "p.tflite", parity_n=8)
    _no_files_left(tmp_path)
    glob = Source("gpool", (3, 32, 32), model=nn.Sequential(nn.Conv2d(3, 10, 3), nn.AdaptiveMaxPool2d(1), nn.Flatten()).eval())
    res = convert(glob, "litert", tmp_path / "g.tflite", parity_n=16)
    assert res.parity.max_abs_diff < 1e-5 and "rewritten as a global max reduction" in res.notes[0]


def test_bad_requests(tiny: Source, tmp_path: Path) -> None:
    onnx_src = convert(tiny, "onnx", tmp_path / "t.onnx", parity_n=8).path
    cases = [
        (lambda: convert(tiny, "openvino", tmp_path / "x.onnx"), "must end in .xml"),
        (lambda: convert(tiny, "tensorrt", tmp_path / "x.plan"), "unknown target format 'tensorrt'"),
        (lambda: convert(tiny, "litert", tmp_path / "x.tflite", precision="fp16"), "LiteRT conversion offers fp32, int8"),
        (lambda: convert(tiny, "onnx", tmp_path / "x.onnx", precision="int8"), "ONNX conversion writes FP32"),
        (lambda: convert("zoo:nonesuch", "onnx", tmp_path / "x.onnx"), "unknown model 'nonesuch'"),
        (lambda: convert(tmp_path / "missing.onnx", "openvino", tmp_path / "x.xml"), "model file not found"),
        (lambda: convert(tmp_path / "model.pt", "onnx", tmp_path / "x.onnx"), "cannot convert from .pt"),
    ]
    for call, message in cases:
        with pytest.raises(EdgemapError, match=message):
            call()
    truncated = tmp_path / "cut.onnx"
    truncated.write_bytes(onnx_src.read_bytes()[:500])
    with pytest.raises(EdgemapError, match="not a valid ONNX model"):
        convert(truncated, "openvino", tmp_path / "x.xml")


def _cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run `edgemap ARGS` in this process through the real entry point; returns the exit status."""
    from edgemap.cli import main

    monkeypatch.setattr(sys, "argv", ["edgemap", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_convert_writes_report_and_refuses_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    import json

    args = ["convert", "zoo:tiny", "--to", "openvino", "--parity-n", "16"]
    assert _cli(monkeypatch, *args, "--out", str(tmp_path / "t.xml"), "--report", str(tmp_path / "r.json")) == 0
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["format"] == "openvino" and record["parity"]["passed"] and "top-1 agreement" in capsys.readouterr().out
    with load_session(None, tmp_path / "t.xml", threads=1) as s:
        assert s.run(np.zeros((1, 3, 32, 32), np.float32)).shape == (1, 10)
    status = _cli(monkeypatch, *args, "--precision", "fp16", "--max-diff", "1e-12", "--out", str(tmp_path / "h.xml"))
    # only our own lines: OpenVINO's telemetry forks a sender, and JAX (loaded by earlier LiteRT tests) warns about it
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("edgemap:")]
    assert status == 2 and len(errors) == 1 and errors[0].startswith("edgemap: error:") and "parity check failed" in errors[0]
    assert not (tmp_path / "h.xml").exists() and not (tmp_path / "h.bin").exists()


class _FlattenHead(torch.nn.Module):
    """Conv -> flatten of the whole feature map -> Linear: its ONNX graph reshapes to a fixed size."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = torch.nn.Conv2d(3, 4, 3, 2, 1), torch.nn.Linear(4 * 8 * 8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_an_onnx_model_converts_to_litert_through_torch(tmp_path: Path, precision: str) -> None:
    """ONNX -> torch.fx -> LiteRT; the parity gate compares with the ONNX model in ONNX Runtime, at a batch the
    fixed-batch LiteRT graph cannot be resized to (the session then runs it image by image)."""
    from edgemap.convert.onnx_export import export_onnx

    torch.manual_seed(0)
    onnx_path = export_onnx(_FlattenHead().eval(), tmp_path / "flat.onnx", (3, 16, 16))
    inputs = np.random.default_rng(2).uniform(-1, 1, (64, 3, 16, 16)).astype(np.float32)  # the caller's "real" images
    res = convert(onnx_path, "litert", tmp_path / f"flat_{precision}.tflite", precision=precision, parity_n=16,
                  calibration_n=16, inputs=inputs, tolerance=Tolerance(None, 1.0 if precision == "fp32" else 0.8))
    assert res.path.is_file() and res.parity.top1_agreement >= (1.0 if precision == "fp32" else 0.8)
    assert res.parity.n == 16
    x = np.random.default_rng(1).standard_normal((5, 3, 16, 16)).astype(np.float32)
    session = load_session("litert", res.path, 1)
    assert session.run(x).shape == (5, 5)


def test_int8_of_a_non_cifar_shape_needs_real_images_and_checks_on_them(tmp_path: Path) -> None:
    """Calibrating on random inputs sets ranges no real image has: refused before any work, with what to give.
    Given real inputs, the parity gate runs on them (a seeded pick from all classes, labels included)."""
    from edgemap.convert.onnx_export import export_onnx

    torch.manual_seed(0)
    onnx_path = export_onnx(_FlattenHead().eval(), tmp_path / "flat.onnx", (3, 16, 16))
    for to, name in (("litert", "q.tflite"), ("openvino", "q.xml")):
        with pytest.raises(EdgemapError, match=r"flat: INT8 calibration needs real images for its 3x16x16 input .* "
                                               r"give --data and --preprocess"):
            convert(onnx_path, to, tmp_path / name, precision="int8", parity_n=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flat.onnx"]
    x = np.random.default_rng(3).uniform(0, 1, (40, 3, 16, 16)).astype(np.float32)
    labels = np.arange(40) % 5
    res = convert(onnx_path, "openvino", tmp_path / "f.xml", parity_n=24, inputs=x, labels=labels)
    assert res.parity.n == 24 and res.parity.reference_top1 is not None  # labelled inputs: accuracy is reported
    with pytest.raises(EdgemapError, match=r"flat: the given inputs have shape \(40, 3, 32, 32\); the model takes "
                                           r"N x 3 x 16 x 16"):
        convert(onnx_path, "openvino", tmp_path / "g.xml", inputs=np.zeros((40, 3, 32, 32), np.float32))
    with pytest.raises(EdgemapError, match="flat: 3 labels for 40 inputs"):
        convert(onnx_path, "openvino", tmp_path / "g.xml", inputs=x, labels=labels[:3])


def test_cli_convert_calibrates_on_a_user_image_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    import json

    from PIL import Image

    from edgemap.convert.onnx_export import export_onnx

    torch.manual_seed(0)
    onnx_path = export_onnx(_FlattenHead().eval(), tmp_path / "flat.onnx", (3, 16, 16))
    rng = np.random.default_rng(0)
    for c in ("a", "b", "c", "d", "e"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    args = ["convert", str(onnx_path), "--to", "litert", "--precision", "int8", "--parity-n", "20",
            "--calibration", "10", "--min-agreement", "0.5"]
    status = _cli(monkeypatch, *args, "--data", str(tmp_path / "imgs"), "--preprocess", "resize=16x16,scale=1/255",
                  "--out", str(tmp_path / "q.tflite"), "--report", str(tmp_path / "r.json"))
    assert status == 0, capsys.readouterr().err
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["parity"]["n"] == 20 and "10 calibration images" in record["notes"][-1]
    capsys.readouterr()
    for extra, message in ((["--data", str(tmp_path / "imgs")], "--data needs --preprocess for a user model"),
                           (["--preprocess", "scale=1/255"], "--preprocess says how --data images become inputs"),
                           ([], "INT8 calibration needs real images")):
        assert _cli(monkeypatch, *args, *extra, "--out", str(tmp_path / "x.tflite")) == 2
        errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("edgemap:")]
        assert len(errors) == 1 and message in errors[0]
    assert not (tmp_path / "x.tflite").exists()


def test_a_fixed_batch_onnx_model_converts_and_is_checked_image_by_image(tmp_path: Path) -> None:
    """Users often export without a dynamic batch axis: the parity gate then runs both sides at batch 1
    (it used to feed 100 images at once and fail on the model's own fixed batch)."""
    import onnx

    torch.manual_seed(0)
    onnx_path = tmp_path / "b1.onnx"
    torch.onnx.export(_FlattenHead().eval(), torch.zeros(1, 3, 16, 16), str(onnx_path), dynamo=False)
    assert onnx.load(str(onnx_path)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    x = np.random.default_rng(3).uniform(0, 1, (24, 3, 16, 16)).astype(np.float32)
    source = open_source(onnx_path)
    assert source.fixed_batch == 1
    for to, precision, name in (("openvino", "fp32", "f.xml"), ("openvino", "int8", "q.xml")):
        res = convert(source, to, tmp_path / name, precision=precision, parity_n=24, calibration_n=24, inputs=x,
                      labels=np.arange(24) % 5, tolerance=Tolerance(None, 1.0 if precision == "fp32" else 0.7))
        assert res.parity.n == 24 and res.path.is_file()
