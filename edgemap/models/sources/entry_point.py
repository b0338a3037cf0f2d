"""A PyTorch model given as code: 'package.module:build_fn' or 'path/file.py:build_fn', plus safetensors weights."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Callable

from edgemap.errors import EdgemapError
from edgemap.models.sources.info import ModelInfo, UserModel, guess_layout


def load_entry_point_model(entry: str, weights: Path | None, input_shape: tuple[int, ...] | None,
                           fallback_shape: tuple[int, ...] | None = None) -> UserModel:
    """Build the module, load its weights strictly, and find its number of classes by one forward pass.

    The input shape comes from `input_shape`, else from an `input_shape` attribute on the module,
    else from `fallback_shape`.
    """
    from torch import nn

    build = import_entry_point(entry)
    try:
        module = build()
    except Exception as exc:  # the user's builder may raise anything
        raise EdgemapError(f"{entry}: calling the builder failed ({first_line(exc)})") from None
    if not isinstance(module, nn.Module):
        raise EdgemapError(f"{entry}: the builder returned a {type(module).__name__}, not a torch.nn.Module")
    if weights is not None:
        load_weights(module, weights, entry)
    module.eval()
    shape = tuple(input_shape or getattr(module, "input_shape", None) or fallback_shape or ())
    if not shape:
        raise EdgemapError(f"{entry}: input shape unknown; give it (e.g. --input-shape 3,32,32) or set "
                           f"`input_shape` on the module")
    info = ModelInfo(entry, "torch", tuple(int(s) for s in shape), probe_classes(module, shape, entry),
                     guess_layout(shape), weights=str(weights) if weights else None)
    return UserModel(info, module=module)


def import_entry_point(entry: str) -> Callable[[], Any]:
    """The callable named by 'package.module:name' or 'path/to/file.py:name'."""
    target, sep, attr = entry.rpartition(":")
    if not sep or not target or not attr:
        raise EdgemapError(f"{entry}: an entry point is 'package.module:build_fn' or 'path/to/file.py:build_fn'")
    try:
        module = _import_file(Path(target)) if target.endswith(".py") or "/" in target else _import_module(target)
    except EdgemapError:
        raise
    except (Exception, SystemExit) as exc:  # import runs the user's code: any error is theirs to fix
        raise EdgemapError(f"{entry}: cannot import {target} ({first_line(exc)})") from None
    fn = getattr(module, attr, None)
    if fn is None:
        raise EdgemapError(f"{entry}: {target} has no attribute {attr!r}")
    if not callable(fn):
        raise EdgemapError(f"{entry}: {attr!r} is a {type(fn).__name__}, not a function")
    return fn


def _import_module(name: str) -> Any:
    # like `python -m` (and uvicorn's app dir): the user's package is found from the current directory
    cwd = str(Path.cwd())
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    finally:
        if added:
            sys.path.remove(cwd)


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise EdgemapError(f"{path}: entry-point file not found")
    name = f"edgemap_user_{path.stem}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.path.insert(0, str(path.parent.resolve()))  # so the file can import its neighbours
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    finally:
        sys.path.remove(str(path.parent.resolve()))
    return module


def load_weights(module: Any, weights: Path, entry: str) -> None:
    """Load a safetensors state dict strictly; a mismatch names missing, unexpected and mis-shaped tensors."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not weights.is_file():
        raise EdgemapError(f"{weights}: weights file not found")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise EdgemapError(f"{weights}: not a readable safetensors file ({first_line(exc)})") from None
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k.removeprefix("module."): v for k, v in state.items()}
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} is {tuple(state[k].shape)} in the file, {tuple(own[k].shape)} in the model"
              for k in own if k in state and state[k].shape != own[k].shape]
    problems = ([f"{len(missing)} missing ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})"] if missing else [])
    problems += [f"{len(unexpected)} unexpected ({', '.join(unexpected[:3])}{', ...' if len(unexpected) > 3 else ''})"] if unexpected else []
    problems += shapes[:3]
    if problems:
        raise EdgemapError(f"{weights}: weights do not match the architecture of {entry}: {'; '.join(problems)}")
    module.load_state_dict(state, strict=True)


def probe_classes(module: Any, shape: tuple[int, ...], where: str, batch: int = 2) -> int:
    """Run the module once on zeros of (batch, *shape); the output must be (batch, classes)."""
    import torch

    try:
        with torch.no_grad():
            y = module(torch.zeros(batch, *shape))
    except Exception as exc:  # shape errors from inside the user's forward
        raise EdgemapError(f"{where}: the model does not run on input of shape {(batch, *shape)} ({first_line(exc)})") from None
    if not isinstance(y, torch.Tensor) or y.ndim != 2 or y.shape[0] != batch:
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise EdgemapError(f"{where}: output is {got}; a classifier returns one (batch, classes) tensor")
    return int(y.shape[1])


def first_line(exc: BaseException) -> str:
    """The exception type and the first line of its message, for one-line errors."""
    text = str(exc).strip()
    return f"{exc.__class__.__name__}: {text.splitlines()[0][:200]}" if text else exc.__class__.__name__
