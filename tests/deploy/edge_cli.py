"""The edgemap CLI with torch blocked, as the edge half runs on a device: `python tests/deploy/edge_cli.py ARGS`.

Subprocess tests of infer/serve run this script; it prints whether torch was imported at exit.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's edgemap, as `python -c` from its root did


class NoTorch:
    """Import hook that refuses torch and its submodules."""

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001, ANN201, ARG002
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("No module named 'torch' (blocked)")


sys.meta_path.insert(0, NoTorch())  # also in `serve --workers` processes, which import this script as __mp_main__

if __name__ == "__main__":
    sys.argv = ["edgemap"] + sys.argv[1:]
    from edgemap.cli import main

    try:
        main()
    finally:
        print("torch imported" if "torch" in sys.modules else "torch never imported", flush=True)
