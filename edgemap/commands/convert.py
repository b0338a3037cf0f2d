"""`edgemap convert`: turn any model source (checkpoint, .onnx, .pt2, entry point) into ONNX / OpenVINO IR / .tflite,
gated on parity."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgemap.commands.options import CLASSES_OPTION, LABELS_OPTION, PREPROCESS_OPTION, WEIGHTS_OPTION

FORMATS = ("onnx", "openvino", "litert")
SUFFIXES = {"onnx": ".onnx", "openvino": ".xml", "litert": ".tflite"}


def register(app: typer.Typer) -> None:
    """Add the `convert` command to the CLI."""

    @app.command("convert")
    def convert_cmd(
        source: Optional[str] = typer.Argument(None, help="checkpoint (.safetensors), .onnx or .pt2 file, entry point "
                                               "'pkg.module:build_fn' (with --weights), or zoo:NAME; default: the shipped model"),
        weights: Optional[Path] = WEIGHTS_OPTION,
        to: str = typer.Option("onnx", "--to", help="onnx, openvino or litert"),
        out: Optional[Path] = typer.Option(None, help="output file (default: SOURCE name + format suffix, in the current folder)"),
        precision: str = typer.Option("fp32", help="fp32; openvino also fp16, int8; litert also int8"),
        opset: int = typer.Option(18, help="ONNX opset"),
        simplify: bool = typer.Option(True, help="simplify the ONNX graph with onnxslim"),
        calibration: int = typer.Option(300, help="calibration images for INT8 (from --data, else the shipped sample)"),
        data: Optional[Path] = typer.Option(None, help="real images for INT8 calibration and the parity gate: image folder, "
                                                     ".npz or CIFAR-10 location (its train split when it has one); "
                                                     "needed for INT8 of a model that does not take 3x32x32"),
        preprocess: Optional[str] = PREPROCESS_OPTION,
        parity_n: int = typer.Option(1000, help="inputs the parity gate compares on"),
        max_diff: Optional[float] = typer.Option(None, help="parity: largest allowed |logit diff| (default by precision)"),
        min_agreement: Optional[float] = typer.Option(None, help="parity: smallest allowed top-1 agreement, 0..1"),
        report: Optional[Path] = typer.Option(None, help="write the conversion record as JSON here"),
        classes: Optional[str] = CLASSES_OPTION,
        labels: Optional[Path] = LABELS_OPTION,
    ) -> None:
        """Convert a model; refuse (no file written) when the result disagrees with the original."""
        from edgemap.data.classes import class_names_option

        run_convert(source, to, out, precision, opset, simplify, calibration, parity_n, max_diff, min_agreement, report,
                    data, preprocess, weights, class_names_option(classes, labels))


def run_convert(source: str | None, to: str, out: Path | None, precision: str, opset: int, simplify: bool,
                calibration: int, parity_n: int, max_diff: float | None, min_agreement: float | None,
                report: Path | None, data: Path | None = None, preprocess: str | None = None,
                weights: Path | None = None, class_names: tuple[str, ...] | None = None) -> dict:
    """The body of `edgemap convert`; returns the conversion record."""
    from rich.console import Console

    from edgemap.convert.api import convert
    from edgemap.convert.parity import DEFAULT_TOLERANCES, Tolerance
    from edgemap.convert.source import open_source, with_inputs
    from edgemap.core.atomic import write_json
    from edgemap.errors import EdgemapError
    from edgemap.models.shipped import shipped_checkpoint

    if to not in FORMATS:
        raise EdgemapError(f"unknown target format {to!r}; choose from {', '.join(FORMATS)}")
    source = source or str(shipped_checkpoint())
    stem = source[4:] if source.startswith("zoo:") else Path(source.rpartition(":")[2] if ":" in Path(source).name else source).stem
    out = out or Path(f"{stem}{'' if precision == 'fp32' else '_' + precision}{SUFFIXES[to]}")
    tolerance = None
    if max_diff is not None or min_agreement is not None:
        base = DEFAULT_TOLERANCES.get(precision, DEFAULT_TOLERANCES["fp32"])
        tolerance = Tolerance(max_diff if max_diff is not None else base.max_abs_diff,
                              min_agreement if min_agreement is not None else base.min_agreement)
    src = open_source(source, weights)
    if data is not None:
        src = with_inputs(src, *data_inputs(src, data, preprocess, max(calibration, parity_n),
                                            model_class_names(source, src, class_names)))
    elif preprocess is not None:
        raise EdgemapError("--preprocess says how --data images become inputs; give --data too")
    elif class_names is not None:
        raise EdgemapError("--classes/--labels say how --data images are labelled; give --data too")
    result = convert(src, to, out, precision=precision, opset=opset, simplify=simplify, calibration_n=calibration,
                     parity_n=parity_n, tolerance=tolerance)
    record = result.to_dict()
    if report:
        write_json(report, record)
    _record(record, source, weights)
    Console().print(f"{result.source} -> {result.path} ({to}, {result.precision}, {result.size_bytes / 1024:.1f} KiB, "
                    f"{result.seconds:.1f} s)\nparity: {result.parity.summary()}"
                    + "".join(f"\nnote: {n}" for n in result.notes))
    return record


def _record(record: dict, source: str, weights: Path | None) -> None:
    """Record the conversion; its parent is the file converted (an entry point: its --weights; zoo:NAME: none)."""
    from edgemap.core.evidence import machine_evidence
    from edgemap.results.builders import convert_run
    from edgemap.results.record import record_run

    parent = Path(source) if Path(source).is_file() else weights
    record_run(convert_run(record, parent, machine_evidence()))


def model_class_names(source: str, src, given: tuple[str, ...] | None) -> tuple[str, ...] | None:  # noqa: ANN001
    """The model's output order: --classes/--labels, else what the file carries (ONNX metadata, a checkpoint's record)."""
    from edgemap.data.classes import onnx_class_names

    if given:
        return given
    if src.onnx_path is not None and Path(src.onnx_path).suffix == ".onnx" and src.user_model:
        return onnx_class_names(src.onnx_path)
    if source.endswith(".safetensors"):
        from edgemap.models.checkpoint import read_info

        return tuple(read_info(source).class_names or ()) or None
    return None


def data_inputs(src, data: Path, preprocess: str | None, n: int,  # noqa: ANN001, ANN201 - Source -> (x, labels)
                class_names: tuple[str, ...] | None = None):
    """`n` images of --data (a seeded random pick), preprocessed as given (a checkpoint: as it was trained), labelled
    in the model's class order when it is known (data with other class names is refused)."""
    from edgemap.commands.evaluate import load_user_data
    from edgemap.data.compat import sample
    from edgemap.data.preprocess import PreprocessSpec, parse_preprocess
    from edgemap.errors import EdgemapError

    if preprocess is None and src.user_model:
        raise EdgemapError(f"{src.name}: --data needs --preprocess for a user model (e.g. 'imagenet,resize=224x224' or "
                           "'resize=48x48,scale=1/255,mean=0.5,std=0.25')")
    spec = parse_preprocess(preprocess) if preprocess else PreprocessSpec.from_normalization(src.normalization)
    loaded = load_user_data(data, "train", spec)
    if class_names:
        from edgemap.data.classes import align_to_model

        loaded = align_to_model(loaded, class_names, "the model")
    images = sample(loaded, n)
    return spec.apply(images.images), images.labels
