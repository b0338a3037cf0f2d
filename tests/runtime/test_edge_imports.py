"""The edge half imports and runs without torch; a missing engine says how to install it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# A meta-path finder that makes the named top-level packages unimportable, as on a device without them.
BLOCKER = textwrap.dedent("""
    import sys
    class Block:
        def __init__(self, names): self.names = names
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in self.names:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, Block(BLOCKED))
""")


def _run(blocked: set[str], body: str) -> subprocess.CompletedProcess:
    code = BLOCKER.replace("BLOCKED", repr(sorted(blocked))) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_onnxruntime_backend_runs_without_torch(tiny_models: dict) -> None:
    proc = _run({"torch", "torchvision", "safetensors"}, f"""
        import numpy as np
        import edgemap.runtime.onnxruntime_backend, edgemap.runtime.registry, edgemap.runtime.base
        from edgemap.runtime.registry import load_session
        s = load_session(None, {str(tiny_models['onnxruntime'])!r}, threads=1)
        y = s.run(np.zeros((2, 3, 32, 32), np.float32))
        assert y.shape == (2, 10)
        try:
            import torch
        except ModuleNotFoundError:
            pass
        else:
            raise SystemExit("the blocker let torch in")
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch was imported"
        print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_litert_and_openvino_backends_run_without_torch(tiny_models: dict) -> None:
    proc = _run({"torch"}, f"""
        import numpy as np
        from edgemap.runtime.registry import load_session
        for p in ({str(tiny_models['litert'])!r}, {str(tiny_models['openvino'])!r}):
            assert load_session(None, p, threads=1).run(np.zeros((1, 3, 32, 32), np.float32)).shape == (1, 10)
        print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_missing_engine_says_how_to_install(tiny_models: dict) -> None:
    proc = _run({"openvino", "ai_edge_litert"}, f"""
        from edgemap.errors import EdgemapError
        from edgemap.runtime.registry import load_session, available_backends
        for backend, path in (("openvino", {str(tiny_models['openvino'])!r}), ("litert", {str(tiny_models['litert'])!r})):
            try:
                load_session(backend, path)
            except EdgemapError as exc:
                print(exc)
    """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert "backend 'openvino' is not installed" in lines[0] and "pip install openvino" in lines[0]
    assert "backend 'litert' is not installed" in lines[1] and "pip install ai-edge-litert" in lines[1]


def test_edge_modules_do_not_import_torch_at_module_level() -> None:
    root = Path(__file__).resolve().parents[2] / "edgemap" / "runtime"
    for name in ("base.py", "registry.py", "formats.py", "onnxruntime_backend.py", "openvino_backend.py",
                 "litert_backend.py", "bench.py", "coldstart.py", "latency.py"):
        top = [ln for ln in (root / name).read_text().splitlines() if ln.startswith(("import ", "from "))]
        assert not any("torch" in ln for ln in top), (name, top)
