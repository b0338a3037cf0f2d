"""The two bundles of a split: the edge bundle (whole model + heads) and the server bundle (whole model +
tails). Each is an ordinary edgemap bundle of the whole model (so `edgemap infer` runs either, and the edge
falls back to it), plus a `split` section naming the whole model's sha256 and the split points, and a
split self-test: a few images' crossing activations and logits, so that each end proves on load that its
halves compute what the host computed. Reading and verifying needs numpy + onnxruntime only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgemap.errors import EdgemapError

SPLIT_FORMAT = "edgemap-split/1"
SELFTEST_IMAGES = 2
ROLES = ("edge", "server")


def export_bundles(src, cuts: list, parts: dict, images: np.ndarray, profile: dict | None, out: Path) -> dict[str, Path]:  # noqa: ANN001
    """Write OUT/edge and OUT/server for the given cuts (CutPoints with their (head, tail) files in `parts`)."""
    import shutil
    import tempfile

    from edgemap.deploy.bundle import pack
    from edgemap.split.profile import run_batched

    sample = images[:SELFTEST_IMAGES]
    x = src.spec.apply(sample)
    logits = run_batched(src.onnx_path, x)
    acts = {c.name: run_batched(parts[c.name][0], x) for c in cuts}
    points = {c.name: {"tensor": c.tensor, "op": c.producer_op, "shape": list(acts[c.name].shape[1:])} for c in cuts}
    class_names = list(src.class_names or [str(i) for i in range(logits.shape[1])])
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for role, index in (("edge", 0), ("server", 1)):
        with tempfile.TemporaryDirectory(dir=out) as tmp:
            staging = Path(tmp)
            files = {}
            for c in cuts:
                name = f"{'head' if role == 'edge' else 'tail'}_{c.name}.onnx"
                shutil.copyfile(parts[c.name][index], staging / name)
                points[c.name]["file"] = name
                files[name] = staging / name
            np.savez_compressed(staging / "split_selftest.npz", images=sample, logits=logits,
                                **{f"act_{k}": v for k, v in acts.items()})
            files["split_selftest.npz"] = staging / "split_selftest.npz"
            if profile is not None and role == "edge":
                (staging / "plan_profile.json").write_text(json.dumps(profile, indent=1))
                files["plan_profile.json"] = staging / "plan_profile.json"
            split = {"format": SPLIT_FORMAT, "role": role, "model_sha256": src.sha256, "model_name": src.name,
                     "points": json.loads(json.dumps(points))}
            # packed and completed beside the target, then renamed: an interrupted export leaves no half bundle
            packed = pack(src.onnx_path, "onnxruntime", staging / "bundle", src.spec.to_dict(), class_names, sample,
                          logits, extra={"split": split})
            _add_files(packed, files)
            packed.chmod(0o755)
            if (out / role).exists():
                shutil.rmtree(out / role)
            written[role] = packed.rename(out / role)
    return written


def _add_files(bundle: Path, files: dict[str, Path]) -> None:
    """Copy the split files into a packed bundle and list them, with their hashes, in its manifest."""
    import shutil

    from edgemap.core.atomic import write_text
    from edgemap.deploy.bundle import sha256

    manifest = json.loads((bundle / "manifest.json").read_text())
    for name, f in files.items():
        shutil.copyfile(f, bundle / name)
        manifest["files"][name] = {"sha256": sha256(bundle / name), "bytes": (bundle / name).stat().st_size}
    write_text(bundle / "manifest.json", json.dumps(manifest, indent=2) + "\n")


def read_split_manifest(bundle: Path, role: str) -> dict:
    """The manifest of a split bundle of the given role, files checked against their hashes."""
    from edgemap.deploy.bundle import check_files, read_manifest

    manifest = read_manifest(bundle)
    split = manifest.get("split")
    if not isinstance(split, dict) or split.get("format") != SPLIT_FORMAT:
        raise EdgemapError(f"{bundle}: not a split bundle (no {SPLIT_FORMAT} section); make one with `edgemap split export`")
    if split.get("role") != role:
        raise EdgemapError(f"{bundle}: this is the {split.get('role')} half of a split; this command needs the {role} half")
    check_files(bundle, manifest)
    return manifest


def selftest_parts(bundle: Path, manifest: dict, sessions: dict) -> None:
    """Each head (edge) or tail (server) reproduces the host's activations / logits on the self-test images."""
    role = manifest["split"]["role"]
    with np.load(bundle / "split_selftest.npz", allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    x = None
    if role == "edge":
        from edgemap.data.preprocess import PreprocessSpec

        x = PreprocessSpec.from_dict(manifest["preprocess"]).apply(data["images"])
    for point, sess in sessions.items():
        expected = data["logits"] if role == "server" else data[f"act_{point}"]
        got = sess.run(data[f"act_{point}"]) if role == "server" else sess.run(x)
        if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-4, atol=1e-4):
            raise EdgemapError(f"{bundle}: split self-test failed at {point}: this machine's "
                               f"{'tail' if role == 'server' else 'head'} does not compute what the host computed")
