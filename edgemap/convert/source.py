"""What a conversion starts from: an edgemap checkpoint, a zoo model, or an .onnx file the user brings.

It also supplies the inputs both sides of the parity gate are run on, and INT8 calibration images: real
images the caller gives (a user's data, preprocessed as evaluated) when there are some; else the shipped
1,000-image sample (normalised as the checkpoint says) for 3x32x32 models; else seeded random inputs, which
serve a parity check but never a calibration (they would set activation ranges no real image has).
"""

from __future__ import annotations

import dataclasses
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
    inputs: tuple[np.ndarray, np.ndarray | None] | None = None  # real float32 NCHW inputs (and labels) from the caller
    fixed_batch: int | None = None  # the only batch size the model takes (a .pt2 saved at batch 1), None: any
    user_model: bool = False  # a user's model (.onnx, .pt2, entry point): no normalisation of its own is known
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


def open_source(spec: str | Path, weights: str | Path | None = None) -> Source:
    """`name.safetensors` (checkpoint), `name.onnx`, `name.pt2`, `pkg.mod:build_fn` (+ weights), or `zoo:NAME`
    (fresh weights, seed 0: for trials and tests)."""
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
        return Source(path.stem, _onnx_input_shape(path), onnx_path=path, fixed_batch=onnx_fixed_batch(path),
                      user_model=True)
    from edgemap.models.sources import is_user_model, load_user_model

    if is_user_model(text):  # a .pt2 program or an entry point: its torch module
        user = load_user_model(text, weights)
        return Source(path.stem if path.suffix else text.rpartition(":")[2], tuple(user.info.input_shape),
                      model=user.torch_module(), fixed_batch=user.info.fixed_batch, user_model=True)
    raise EdgemapError(f"{path}: cannot convert from {path.suffix or 'a file without suffix'}; give a checkpoint "
                       "(.safetensors), an .onnx or .pt2 file, an entry point 'pkg.mod:build_fn' (with --weights), or zoo:NAME")


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


def onnx_fixed_batch(path: Path) -> int | None:
    """The batch size an .onnx file's input fixes (exported without a dynamic batch axis), None when any is taken."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    dims = next(i for i in graph.input if i.name not in inits).type.tensor_type.shape.dim
    return int(dims[0].dim_value) if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0 else None


def with_inputs(src: Source, x: np.ndarray, labels: np.ndarray | None = None) -> Source:
    """`src` checked and calibrated on the caller's real inputs `x` (float32 NCHW, preprocessed as evaluated)."""
    x = np.asarray(x)
    if x.ndim != len(src.input_shape) + 1 or tuple(x.shape[1:]) != tuple(src.input_shape) or not len(x):
        raise EdgemapError(f"{src.name}: the given inputs have shape {tuple(x.shape)}; the model takes N x "
                           f"{' x '.join(map(str, src.input_shape))}")
    if labels is not None and len(labels) != len(x):
        raise EdgemapError(f"{src.name}: {len(labels)} labels for {len(x)} inputs")
    return dataclasses.replace(src, inputs=(x.astype(np.float32, copy=False), labels))


def _pick(x: np.ndarray, labels: np.ndarray | None, n: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """n of the caller's inputs, a seeded random subset (an image folder is sorted by class: the first n are one class)."""
    if n >= len(x):
        return x, labels
    idx = np.sort(np.random.default_rng(seed).permutation(len(x))[:n])
    return x[idx], (labels[idx] if labels is not None else None)


def parity_inputs(src: Source, n: int = 1000) -> tuple[np.ndarray, np.ndarray | None]:
    """`n` float32 inputs (and labels when they are real images) for the parity gate."""
    if n < 1:
        raise EdgemapError(f"need at least one parity input, got {n}")
    if src.inputs is not None:
        return _pick(*src.inputs, n, seed=0)
    if tuple(src.input_shape) == (3, 32, 32):
        from edgemap.data.sample import load_sample
        from edgemap.data.transforms import to_nchw_float

        sample = load_sample()
        n = min(n, len(sample))
        return to_nchw_float(sample.images[:n], src.normalization), sample.labels[:n]
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, *src.input_shape), dtype=np.float32), None


def calibration_inputs(src: Source, n: int = 300) -> np.ndarray:
    """`n` real float32 inputs for INT8 calibration; refuses when only random inputs exist for this input shape."""
    if n < 1:
        raise EdgemapError(f"need at least one calibration image, got {n}")
    if src.inputs is not None:
        return _pick(*src.inputs, n, seed=1)[0]
    if tuple(src.input_shape) != (3, 32, 32):
        raise EdgemapError(f"{src.name}: INT8 calibration needs real images for its "
                           f"{'x'.join(map(str, src.input_shape))} input (random inputs set activation ranges no real "
                           f"image has); give --data and --preprocess")
    return parity_inputs(src, n)[0]
