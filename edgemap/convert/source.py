"""What a conversion starts from: an edgemap checkpoint, a zoo model, or an .onnx file the user brings.

It also supplies the inputs both sides of the parity gate are run on: the shipped 1,000-image
sample (normalised as the checkpoint says) for 3x32x32 models, seeded random inputs otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgemap.data.transforms import Normalization
from edgemap.errors import EdgemapError


@dataclass
class Source:
    """A model to convert: a torch module (checkpoint or zoo) and/or an ONNX file."""

    name: str
    input_shape: tuple[int, ...]
    model: object | None = None  # torch.nn.Module in eval mode, when the source is PyTorch
    onnx_path: Path | None = None
    normalization: Normalization = field(default_factory=Normalization)
    _ort: object | None = field(default=None, repr=False, compare=False)  # onnxruntime session, opened once

    def reference(self, x: np.ndarray) -> np.ndarray:
        """Logits of the original model (torch eager, or onnxruntime for an .onnx source)."""
        if self.model is not None:
            import torch

            with torch.inference_mode():
                return self.model(torch.from_numpy(x)).float().numpy()
        return self._ort_session().run(x)

    def _ort_session(self):  # noqa: ANN202 - cached OrtSession
        if self._ort is None:
            from edgemap.runtime.onnxruntime_backend import OrtSession

            self._ort = OrtSession(self.onnx_path, threads=1, providers=["CPUExecutionProvider"])
        return self._ort


def open_source(spec: str | Path) -> Source:
    """`name.safetensors` (checkpoint), `name.onnx`, or `zoo:NAME` (fresh weights, seed 0: for trials and tests)."""
    text = str(spec)
    if text.startswith("zoo:"):
        import torch

        from edgemap.models import zoo

        torch.manual_seed(0)
        entry = zoo.entry(text[4:])
        return Source(entry.name, entry.input_shape, model=zoo.build(entry.name).eval())
    path = Path(text)
    if path.suffix == ".safetensors":
        from edgemap.models.checkpoint import load_checkpoint

        model, info = load_checkpoint(path)
        return Source(path.stem, tuple(info.input_shape), model=model, normalization=info.normalization)
    if path.suffix == ".onnx":
        return Source(path.stem, _onnx_input_shape(path), onnx_path=path)
    raise EdgemapError(f"{path}: cannot convert from {path.suffix or 'a file without suffix'}; "
                       "give a checkpoint (.safetensors), an .onnx file, or zoo:NAME")


def _onnx_input_shape(path: Path) -> tuple[int, ...]:
    """Input shape without the batch axis, after checking the file parses and ONNX Runtime can read it."""
    from edgemap.runtime.formats import check_onnx_file
    import onnx

    check_onnx_file(path)
    graph = onnx.load(str(path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise EdgemapError(f"{path}: edgemap converts single-input models; this one has {len(inputs)} inputs")
    dims = inputs[0].type.tensor_type.shape.dim[1:]
    if any(not d.HasField("dim_value") for d in dims):
        raise EdgemapError(f"{path}: only the batch axis may be dynamic; input shape is {[d.dim_param or d.dim_value for d in dims]}")
    return tuple(int(d.dim_value) for d in dims)


def parity_inputs(src: Source, n: int = 1000) -> tuple[np.ndarray, np.ndarray | None]:
    """`n` float32 inputs (and labels when they are real images) for the parity gate and calibration."""
    if n < 1:
        raise EdgemapError(f"need at least one parity input, got {n}")
    if tuple(src.input_shape) == (3, 32, 32):
        from edgemap.data.sample import load_sample
        from edgemap.data.transforms import to_nchw_float

        sample = load_sample()
        n = min(n, len(sample))
        return to_nchw_float(sample.images[:n], src.normalization), sample.labels[:n]
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, *src.input_shape), dtype=np.float32), None
