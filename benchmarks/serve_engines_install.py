"""The `litert` and `openvino` edge installs, for real: a fresh virtual environment per engine, built from
requirements/edge-litert.txt or requirements/edge-openvino.txt alone (no torch), runs `edgemap infer` and
`edgemap serve` on a bundle of that engine, and answers as the host did.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/serve_engines_install.py [--engines litert,openvino]
    # -> benchmarks/results/serve_engines_install.json + .md; a few minutes (pip downloads the engines)

Host side (this venv, torch): the shipped CIFAR-10 model (serve_load.make_bundle's ONNX) converted with
`edgemap.convert.api.convert` (FP32, parity-checked) to .tflite / OpenVINO IR, packed as a bundle with its
self-test logits from that engine. Edge side (the fresh venv, edgemap from this checkout on PYTHONPATH): torch
must be absent; `edgemap bundle verify` (hashes + self-test), `edgemap infer --json` on 4 sample PNGs, then
`edgemap serve` and a POST of the same PNGs: top-1 must equal the host engine's. Recorded: pip's time, the venv's
installed size, the engine's version. A check, not a test: installs are slow and need the package registry.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
RESULTS = ROOT / "benchmarks" / "results"
ENGINES = {"litert": ("model.tflite", "edge-litert.txt", "ai_edge_litert"),
           "openvino": ("model.xml", "edge-openvino.txt", "openvino")}
N_IMAGES = 4


def host_bundle(engine: str, onnx_bundle: Path, folder: Path) -> tuple[Path, list[str], list[bytes]]:
    """(bundle of `engine`, the host engine's top-1 per sample image, the sample images as PNG)."""
    from serve_load import png

    from edgemap.convert.api import convert
    from edgemap.data.preprocess import PreprocessSpec
    from edgemap.data.sample import load_sample
    from edgemap.deploy.bundle import pack, read_manifest
    from edgemap.runtime.registry import load_session

    manifest = read_manifest(onnx_bundle)
    model = convert(onnx_bundle / manifest["model"], engine, folder / ENGINES[engine][0], parity_n=64).path
    spec = PreprocessSpec.from_dict(manifest["preprocess"])
    images = load_sample().images[:16]
    session = load_session(engine, model, threads=1)
    logits = session.run(spec.apply(images))
    session.close()
    bundle = pack(model, engine, folder / f"bundle-{engine}", spec.to_dict(), manifest["class_names"], images, logits)
    top1 = [manifest["class_names"][int(i)] for i in logits[:N_IMAGES].argmax(1)]
    return bundle, top1, [png(im) for im in images[:N_IMAGES]]


def fresh_venv(engine: str, folder: Path) -> tuple[Path, dict]:
    """A venv with requirements/<engine file> only; its python, and what installing it took."""
    venv = folder / f"venv-{engine}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    t0 = time.time()
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "-r", str(ROOT / "requirements" / ENGINES[engine][1])],
                       capture_output=True, text=True, timeout=1800)
    if r.returncode:
        raise SystemExit(f"pip install for {engine} failed: {r.stderr[-1500:]}")
    probe = subprocess.run([str(py), "-c", "import importlib.util as u, importlib.metadata as m, sys; "
                            f"print(u.find_spec('torch') is None, m.version(sys.argv[1]))", ENGINES[engine][2]
                            .replace("_", "-")], capture_output=True, text=True, timeout=60)
    no_torch, version = probe.stdout.split()
    size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file())
    return py, {"pip_seconds": round(time.time() - t0, 1), "venv_mb": round(size / 1e6), "torch_absent": no_torch == "True",
                "engine_version": version}


def edge_run(py: Path, bundle: Path, pngs: list[bytes], folder: Path) -> dict:
    """verify, infer --json and serve + POST in the fresh venv; the top-1s each gave."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EDGEMAP_STORE": "off"}
    files = []
    for i, data in enumerate(pngs):
        files.append(folder / f"x{i}.png")
        files[-1].write_bytes(data)
    cli = [str(py), "-m", "edgemap.cli"]
    verify = subprocess.run([*cli, "bundle", "verify", str(bundle)], capture_output=True, text=True, env=env, timeout=300)
    infer = subprocess.run([*cli, "infer", str(bundle), *map(str, files), "--json"], capture_output=True, text=True,
                           env=env, timeout=300)
    out = {"verify_ok": verify.returncode == 0, "verify": (verify.stdout + verify.stderr).strip()[-300:],
           "infer_top1": [json.loads(line)["top1"] for line in infer.stdout.splitlines() if line.startswith("{")],
           "infer_stderr": infer.stderr.strip()[-300:]}
    from serve_load import wait_ready

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([*cli, "serve", str(bundle), "--port", str(port)], stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_ready(port, proc, 180)
        out["serve_top1"] = [_post(port, data)["predictions"][0]["top1"] for data in pngs]
        proc.send_signal(signal.SIGTERM)
        out["serve_exit"] = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
        out["serve_stderr"] = proc.stderr.read().strip()[-300:]
    return out


def _post(port: int, data: bytes) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/predict", data=data, headers={"Content-Type": "image/png"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def main() -> None:
    from compress_common import write_result_json  # the JSON is an export of the results store
    from serve_load import make_bundle

    from edgemap.core.atomic import write_text
    from edgemap.core.evidence import machine_evidence

    ap = argparse.ArgumentParser()
    ap.add_argument("--engines", default="litert,openvino")
    engines = [e for e in ap.parse_args().engines.split(",") if e]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        onnx_bundle = make_bundle(folder / "onnx")
        for engine in engines:
            bundle, host_top1, pngs = host_bundle(engine, onnx_bundle, folder)
            py, install = fresh_venv(engine, folder)
            edge = edge_run(py, bundle, pngs, folder)
            ok = (install["torch_absent"] and edge["verify_ok"] and edge["infer_top1"] == host_top1
                  and edge.get("serve_top1") == host_top1 and edge.get("serve_exit") == 0)
            results[engine] = {"ok": ok, "host_top1": host_top1, **install, **edge}
            print(engine, json.dumps(results[engine]), flush=True)
    record = {"engines": results, "evidence": machine_evidence(1)}
    write_result_json(RESULTS / "serve_engines_install.json", record)
    lines = ["# serve_engines_install: the litert and openvino edge installs, fresh venvs without torch", "",
             f"`PYTHONPATH=$PWD .venv/bin/python benchmarks/serve_engines_install.py --engines {','.join(engines)}`", "",
             "| engine | requirements | result | engine version | torch absent | pip s | venv MB | verify | infer top-1 = host "
             "| serve top-1 = host | serve exit |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for engine, r in results.items():
        lines.append(f"| {engine} | requirements/{ENGINES[engine][1]} | {'OK' if r['ok'] else 'FAILED'} | "
                     f"{r['engine_version']} | {r['torch_absent']} | {r['pip_seconds']} | {r['venv_mb']} | "
                     f"{r['verify_ok']} | {r['infer_top1'] == r['host_top1']} | {r.get('serve_top1') == r['host_top1']} | "
                     f"{r.get('serve_exit')} |")
    lines += ["", "pip's time includes downloading the wheels from the package registry (shared machine, noisy)."]
    write_text(RESULTS / "serve_engines_install.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
