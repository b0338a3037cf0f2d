"""Model file formats: which backend opens a file, and cheap checks before any native engine sees it.

Native engines (protobuf, flatbuffers, the OpenVINO XML reader) are the wrong place to find out
that a file is truncated or of the wrong kind: their messages are cryptic and a malformed file
could in principle fault the process. These checks read only bytes and headers. numpy-free, torch-free.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from edgemap.errors import EdgemapError

# file suffix -> backend that runs it
SUFFIX_BACKENDS = {".onnx": "onnxruntime", ".xml": "openvino", ".tflite": "litert", ".safetensors": "torch"}
TFLITE_IDENTIFIER = b"TFL3"  # flatbuffer file identifier, bytes 4..8 of every .tflite


def backend_for(path: str | Path) -> str:
    """The backend that runs a model file, from its suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIX_BACKENDS:
        known = ", ".join(f"{s} ({b})" for s, b in SUFFIX_BACKENDS.items())
        raise EdgemapError(f"{path}: cannot tell the model format from suffix {suffix or '(none)'!r}; known: {known}")
    return SUFFIX_BACKENDS[suffix]


def sniff(path: str | Path) -> str | None:
    """The format a file's first bytes say it is: 'tflite', 'openvino', 'safetensors', 'onnx' or None."""
    with open(path, "rb") as f:
        head = f.read(64)
    if head[4:8] == TFLITE_IDENTIFIER:
        return "tflite"
    if head.lstrip().startswith(b"<?xml") or head.lstrip().startswith(b"<net"):
        return "openvino"
    if len(head) >= 9 and head[8:9] == b"{":  # safetensors: u64 header length then a JSON object
        return "safetensors"
    if head[:1] in (b"\x08", b"\x12", b"\x1a", b"\x22", b"\x3a", b"\x42"):  # protobuf tags of ModelProto fields
        return "onnx"
    return None


def require_file(path: str | Path, expected: str) -> Path:
    """Raise a one-line error unless `path` is a non-empty file whose bytes look like `expected`."""
    path = Path(path)
    if not path.is_file():
        raise EdgemapError(f"{path}: model file not found")
    if path.stat().st_size == 0:
        raise EdgemapError(f"{path}: model file is empty")
    found = sniff(path)
    if found != expected:
        what = f"looks like a {found} file" if found else "is not a recognised model format"
        raise EdgemapError(f"{path}: expected a {expected} model, but the file {what}")
    return path


def check_onnx_file(path: str | Path) -> Path:
    """Parse an .onnx file fully so truncation is reported before onnxruntime sees it.

    The edge install may lack the `onnx` package; then only the header is checked here and
    onnxruntime's own parse error (a Python exception, already turned into one line) does the rest.
    """
    path = require_file(path, "onnx")
    try:
        import onnx
    except ImportError:
        return path
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:200]
        raise EdgemapError(f"{path}: not a valid ONNX model (truncated or corrupt?): {first}") from None
    if not model.graph.node:
        raise EdgemapError(f"{path}: ONNX model has an empty graph")
    return path


def check_tflite_file(path: str | Path) -> Path:
    """Check the flatbuffer identifier and that the root offset points inside the file."""
    path = require_file(path, "tflite")
    data = path.read_bytes()
    root = int.from_bytes(data[:4], "little")
    if len(data) < 16 or root >= len(data):
        raise EdgemapError(f"{path}: truncated .tflite file ({len(data)} bytes)")
    return path


def check_openvino_files(xml_path: str | Path) -> tuple[Path, Path]:
    """Parse the IR's .xml and check that every weight range it names lies inside the .bin beside it."""
    xml_path = require_file(xml_path, "openvino")
    bin_path = xml_path.with_suffix(".bin")
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise EdgemapError(f"{xml_path}: OpenVINO IR .xml is not well-formed XML ({exc})") from None
    if root.tag != "net":
        raise EdgemapError(f"{xml_path}: not an OpenVINO IR (root element <{root.tag}>, expected <net>)")
    needed = 0
    for data in root.iter("data"):
        if "offset" in data.attrib and "size" in data.attrib:
            needed = max(needed, int(data.attrib["offset"]) + int(data.attrib["size"]))
    have = bin_path.stat().st_size if bin_path.is_file() else None
    if needed and have is None:
        raise EdgemapError(f"{bin_path}: weights file of the OpenVINO IR not found (an IR is NAME.xml + NAME.bin)")
    if have is not None and have < needed:
        raise EdgemapError(f"{bin_path}: truncated OpenVINO weights ({have} bytes, the .xml needs {needed})")
    return xml_path, bin_path
