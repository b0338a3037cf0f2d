"""A torch.export program saved as .pt2 (torch.export.save), with the torch version it records checked first.

A .pt2 is a zip; `<name>/models/model.json` records `torch_version` and the export `schema_version`
(major.minor). torch refuses another schema major with a cryptic error, so that case, and a
program made by a newer torch that fails to load, are reported with both versions.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from edgemap.errors import EdgemapError
from edgemap.models.sources.entry_point import first_line, probe_classes
from edgemap.models.sources.info import ModelInfo, UserModel, guess_layout


def recorded_versions(path: Path) -> tuple[str | None, tuple[int, int] | None]:
    """(torch_version, (schema major, minor)) recorded in a .pt2 archive; None where not recorded."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()  # CRC of every member: a truncated or altered archive stops here
            if bad is not None:
                raise EdgemapError(f"{path}: not a valid .pt2 archive (member {bad} is corrupt)")
            if not any(n.endswith("/archive_format") or "/models/" in n for n in z.namelist()):
                # zipfile falls back to an embedded zip (sample inputs) when the outer one is truncated
                raise EdgemapError(f"{path}: not a valid .pt2 archive (truncated, or not written by torch.export.save)")
            names = [n for n in z.namelist() if "/models/" in n and n.endswith(".json")]
            if not names:
                return None, None
            meta = json.loads(z.read(sorted(names, key=lambda n: not n.endswith("/model.json"))[0]))
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as exc:
        raise EdgemapError(f"{path}: not a valid .pt2 archive ({first_line(exc)})") from None
    schema = meta.get("schema_version") or {}
    version = (int(schema["major"]), int(schema.get("minor", 0))) if "major" in schema else None
    return meta.get("torch_version"), version


def load_pt2_model(path: Path, input_shape: tuple[int, ...] | None = None) -> UserModel:
    """Load with torch.export.load; the program's module() is the nn.Module, its placeholder the input shape."""
    import torch
    from torch._export.serde.schema import SCHEMA_VERSION
    from torch.torch_version import TorchVersion

    if not path.is_file():
        raise EdgemapError(f"{path}: model file not found")
    if not zipfile.is_zipfile(path):
        raise EdgemapError(f"{path}: not a .pt2 archive (torch.export.save writes a zip file)")
    made_by, schema = recorded_versions(path)
    ours = f"this is torch {torch.__version__} (export schema {SCHEMA_VERSION[0]}.{SCHEMA_VERSION[1]})"
    try:
        newer = made_by is not None and TorchVersion(torch.__version__) < made_by.split("+")[0]
    except Exception:  # an unparsable recorded version says nothing about age
        newer = False
    if schema is not None and schema[0] != SCHEMA_VERSION[0]:
        age = "a newer" if schema[0] > SCHEMA_VERSION[0] or newer else "an older"
        raise EdgemapError(f"{path}: made by {age} torch {made_by or '?'} (export schema {schema[0]}.{schema[1]}); "
                           f"{ours}: re-export it with this torch or install a matching one")
    try:
        program = torch.export.load(str(path))
    except Exception as exc:  # the deserializer raises many types
        if newer:
            raise EdgemapError(f"{path}: made by a newer torch {made_by} and cannot be read ({first_line(exc)}); "
                               f"{ours}: re-export it with this torch or upgrade") from None
        raise EdgemapError(f"{path}: cannot load this torch.export program ({first_line(exc)})") from None
    dims = _input_dims(path, program)
    shape = tuple(input_shape) if input_shape else tuple(dims[1:])
    if None in shape:
        raise EdgemapError(f"{path}: input axes {dims} are not all fixed; give the input shape (--input-shape)")
    module = program.module()
    # module() forbids train()/eval() by patching them on the instance; the graph is fixed aten ops
    # either way, so restore nn.Module's methods and let every stage call .eval() as usual
    for name in ("train", "eval"):
        module.__dict__.pop(name, None)
    fixed = dims[0]
    classes = probe_classes(module, shape, str(path), batch=fixed or 2)  # type: ignore[arg-type]
    info = ModelInfo(str(path), "pt2", shape, classes, guess_layout(shape), fixed_batch=fixed)  # type: ignore[arg-type]
    return UserModel(info, path=path, module=module)


def _input_dims(path: Path, program: Any) -> list[int | None]:
    """The user input's shape, None for symbolic (dynamic) axes."""
    user = set(program.graph_signature.user_inputs)
    holders = [n for n in program.graph.nodes if n.op == "placeholder" and n.name in user]
    if len(holders) != 1:
        raise EdgemapError(f"{path}: a classifier has one input, this program has {len(holders)}")
    val = holders[0].meta.get("val")
    if val is None or not hasattr(val, "shape"):
        raise EdgemapError(f"{path}: the program does not record its input shape")
    return [int(d) if isinstance(d, int) else None for d in val.shape]
