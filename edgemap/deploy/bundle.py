"""A deployable bundle: model file(s), manifest (hashes, input spec, preprocessing, classes, mapping,
metrics) and a self-test. numpy + the chosen runtime only: this module runs on the device.

    bundle/
      manifest.json   what to load and how to feed it; sha256 of every file
      model.onnx      (or model.xml + model.bin, or model.tflite)
      selftest.npz    a few input images and the outputs the mapped model gave on the host
      recipe.yaml     how the model was made (re-runnable with `edgemap run`)
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path, PurePosixPath

import numpy as np

from edgemap import __version__
from edgemap.core.atomic import atomic_path
from edgemap.errors import EdgemapError

FORMAT = "edgemap-bundle/1"
MODEL_SUFFIXES = {"onnxruntime": (".onnx",), "openvino": (".xml", ".bin"), "litert": (".tflite",)}


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _model_files(model_path: Path, backend: str) -> list[Path]:
    if backend not in MODEL_SUFFIXES:
        raise EdgemapError(f"cannot bundle backend {backend!r}; bundles hold {', '.join(MODEL_SUFFIXES)} models")
    files = [model_path.with_suffix(s) for s in MODEL_SUFFIXES[backend]]
    for f in files:
        if not f.is_file():
            raise EdgemapError(f"{f}: model file not found")
    return files


def pack(model_path: str | Path, backend: str, out_dir: str | Path, preprocess: dict, class_names: list[str],
         selftest_images: np.ndarray, selftest_logits: np.ndarray, extra: dict | None = None,
         recipe_yaml: str | None = None) -> Path:
    """Write a bundle directory (built in a temp dir beside `out_dir`, then renamed into place)."""
    out_dir = Path(out_dir)
    outputs = int(np.asarray(selftest_logits).shape[-1])
    if len(class_names) != outputs:  # the edge runtime names predictions by index: the order must be the model's
        raise EdgemapError(f"bundle: {len(class_names)} class names for a model with {outputs} outputs")
    files = _model_files(Path(model_path), backend)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        names = []
        for f in files:
            shutil.copyfile(f, staging / f"model{f.suffix}")
            names.append(f"model{f.suffix}")
        np.savez_compressed(staging / "selftest.npz", images=selftest_images, logits=selftest_logits.astype(np.float32))
        names.append("selftest.npz")
        if recipe_yaml is not None:
            (staging / "recipe.yaml").write_text(recipe_yaml)
            names.append("recipe.yaml")
        manifest = {"format": FORMAT, "edgemap_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "backend": backend, "model": names[0], "preprocess": preprocess, "class_names": list(class_names),
                    "files": {n: {"sha256": sha256(staging / n), "bytes": (staging / n).stat().st_size} for n in names},
                    **(extra or {})}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        staging.chmod(0o755)  # mkdtemp makes 0700; a bundle is copied to and read on other machines
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out_dir


def read_manifest(bundle: str | Path, public_key: str | Path | None = None) -> dict:
    """The manifest of a bundle directory, checked for the fields a runtime needs and for file names that
    stay inside the bundle; with `public_key`, its Ed25519 signature is checked on the very bytes parsed."""
    path = Path(bundle) / "manifest.json"
    if not path.is_file() or path.is_symlink():
        raise EdgemapError(f"{bundle}: not an edgemap bundle (no manifest.json)")
    raw = path.read_bytes()
    if public_key is not None:
        from edgemap.deploy.signing import verify_manifest_bytes

        verify_manifest_bytes(Path(bundle), raw, public_key)
    try:
        manifest = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EdgemapError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise EdgemapError(f"{path}: unsupported bundle format {got!r} (this edgemap reads {FORMAT})")
    for key in ("backend", "model", "preprocess", "class_names", "files"):
        if key not in manifest:
            raise EdgemapError(f"{path}: manifest lacks {key!r}")
    _check_file_table(path, manifest)
    return manifest


def _check_file_table(path: Path, manifest: dict) -> None:
    """Every name is a plain relative name inside the bundle, with a hash; the model files are among them."""
    files = manifest["files"]
    if not isinstance(files, dict) or not all(isinstance(r, dict) and {"sha256", "bytes"} <= r.keys() for r in files.values()):
        raise EdgemapError(f"{path}: 'files' must map each file name to {{sha256, bytes}}")
    for name in files:
        confined_name(name, path)
    model = manifest["model"]
    if not isinstance(model, str):
        raise EdgemapError(f"{path}: 'model' must be a file name, got {model!r}")
    stem = model.rsplit(".", 1)[0]
    needed = [model] + [stem + s for s in MODEL_SUFFIXES.get(manifest["backend"], ()) if not model.endswith(s)]
    needed.append("selftest.npz")
    missing = [n for n in needed if n not in files]
    if missing:
        raise EdgemapError(f"{path}: {', '.join(missing)} not hashed in the manifest's 'files' (every file the bundle "
                           "uses must be); refusing the bundle")


def confined_name(name: object, where: Path | str = "manifest") -> str:
    """`name` if it is a relative path that stays inside the bundle (no absolute path, '..', backslash or NUL)."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        raise EdgemapError(f"{where}: file name {name!r} is not a plain relative name; refusing the bundle")
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or ".." in parts or ":" in parts[0]:
        raise EdgemapError(f"{where}: file name {name!r} escapes the bundle folder; refusing the bundle")
    return name


def member_path(bundle: str | Path, name: str) -> Path:
    """The path of a bundle member, refused when it or a folder on the way is a link (it could point anywhere)."""
    confined_name(name, Path(bundle) / "manifest.json")
    path = Path(bundle)
    for part in PurePosixPath(name).parts:
        path = path / part
        if path.is_symlink():
            raise EdgemapError(f"{path}: a link inside the bundle; bundles hold plain files only (refusing the bundle)")
    return path


def check_files(bundle: str | Path, manifest: dict) -> None:
    """Every listed file exists as a plain file with its recorded size and sha256 (catches truncation and
    modification; a signature, checked by read_manifest, is what catches a re-hashed manifest)."""
    for name, rec in manifest["files"].items():
        f = member_path(bundle, name)
        if not f.is_file():
            raise EdgemapError(f"{f}: listed in the manifest but missing")
        if f.stat().st_size != rec["bytes"] or sha256(f) != rec["sha256"]:
            raise EdgemapError(f"{f}: contents differ from the manifest (corrupt or modified)")


def archive(bundle: str | Path, target: str | Path) -> Path:
    """A .tar.gz of the bundle for copying to a device (written atomically)."""
    import tarfile

    bundle = Path(bundle)
    with atomic_path(target) as tmp:
        with tarfile.open(tmp, "w:gz") as tar:
            tar.add(bundle, arcname=bundle.name)
    return Path(target)


def sign_bundle(bundle: str | Path, private_key: str | Path) -> Path:
    """Check the bundle's files against its manifest, then sign the manifest's bytes; returns signature.json."""
    from edgemap.deploy.signing import sign_manifest

    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    check_files(bundle, manifest)  # never sign a bundle that is already broken
    return sign_manifest(bundle, (bundle / "manifest.json").read_bytes(), private_key)
