"""--classes/--labels on compress quantize and convert: the folder relabelled into the model's order, or refused."""

import subprocess
import sys
from pathlib import Path

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from test_classes import write_folder  # noqa: E402
from test_compat import colour_data, colour_model  # noqa: E402


def edgemap(*args):
    return subprocess.run([sys.executable, "-m", "edgemap.cli", *args], capture_output=True, text=True, timeout=300)


def test_quantize_and_convert_read_the_folder_in_the_models_class_order(tmp_path):
    colour_model(tmp_path / "c.onnx", size=8)  # outputs red, green, blue; the folder sorts blue, green, red
    folder = write_folder(tmp_path / "images", colour_data(n=60, classes=("red", "green", "blue")))
    common = ["--preprocess", "unit", "--latency-runs", "0", "--mode", "fp16"]
    r = edgemap("compress", "quantize", str(tmp_path / "c.onnx"), "--out", str(tmp_path / "q.onnx"), "--eval-data",
                str(folder), *common, "--classes", "red,green,blue")
    assert r.returncode == 0, r.stderr
    assert "100.00" in r.stdout and "33.33" not in r.stdout
    r = edgemap("compress", "quantize", str(tmp_path / "c.onnx"), "--out", str(tmp_path / "q2.onnx"), "--eval-data",
                str(folder), *common, "--classes", "red,green,navy")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "'blue'" in r.stderr
    named = onnx.load(tmp_path / "c.onnx")
    from edgemap.data.classes import set_onnx_class_names

    set_onnx_class_names(named, ("red", "green", "magenta"))
    onnx.save(named, tmp_path / "named.onnx")
    r = edgemap("convert", str(tmp_path / "named.onnx"), "--to", "openvino", "--out", str(tmp_path / "n.xml"),
                "--data", str(folder), "--preprocess", "unit", "--parity-n", "20", "--calibration", "20")
    assert r.returncode == 2 and "the data has 'blue' that the model does not know" in r.stderr
    r = edgemap("convert", str(tmp_path / "c.onnx"), "--to", "openvino", "--out", str(tmp_path / "c.xml"), "--data",
                str(folder), "--preprocess", "unit", "--parity-n", "20", "--calibration", "20", "--classes", "red,green,blue")
    assert r.returncode == 0, r.stderr
