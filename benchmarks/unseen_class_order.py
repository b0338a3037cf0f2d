"""A folder in another class order than the model: caught by `edgemap eval`, and fixed by the printed hint.

    nice -n 5 .venv/bin/python benchmarks/unseen_class_order.py     # ~1.5 min; needs benchmarks/unseen_make.py first

GrayNet's outputs are in a shuffled class order (out/unseen/graynet.labels.txt) that the ONNX file does
not carry; the test folder's sub-folders sort alphabetically. Run 1: plain `edgemap eval` (no class
order given) - the permutation check must print a --classes value. Run 2: the same command with that
value pasted in. Run 3: --labels with the user's own file. Result: benchmarks/results/unseen_class_order.md.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREPROCESS = "channels=gray,scale=1/255,mean=0.5,std=0.25"


def edgemap_eval(*extra: str) -> tuple[str, str]:
    """Run `edgemap eval` on GrayNet and the grayscale test folder; returns (command, joined stdout)."""
    args = ["eval", "out/unseen/graynet.onnx", "--data", "out/unseen/gray/test", "--preprocess", PREPROCESS,
            "--no-confusion", *extra]
    proc = subprocess.run([sys.executable, "-m", "edgemap.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"edgemap {' '.join(args)} failed: {proc.stderr.strip()[-500:]}")
    return "edgemap " + " ".join(f"'{a}'" if "," in a or "=" in a else a for a in args), " ".join(proc.stdout.split())


def main() -> None:
    """Three runs; the hint of the first is pasted into the second."""
    from edgemap.core.evidence import machine_evidence

    cmd1, out1 = edgemap_eval()
    found = re.search(r"--classes (\S+)", out1)
    if not found:
        raise SystemExit(f"no --classes hint in: {out1}")
    hinted = found.group(1)
    cmd2, out2 = edgemap_eval("--classes", hinted)
    cmd3, out3 = edgemap_eval("--labels", "out/unseen/graynet.labels.txt")
    truth = ",".join((ROOT / "out/unseen/graynet.labels.txt").read_text().split())
    top1 = [re.search(r"top-1 ([\d.]+)% on ([\d,]+) images", o).group(1) for o in (out1, out2, out3)]
    ev = machine_evidence()
    text = "\n".join([
        "# Class order: a folder in another order than the model, caught and fixed by the printed hint\n",
        "`nice -n 5 .venv/bin/python benchmarks/unseen_class_order.py` (GrayNet and folder from benchmarks/unseen_make.py)\n",
        f"1. `{cmd1}`: top-1 **{top1[0]} %**; printed: \"{out1[out1.find('sanity check'):][:600]}\"",
        f"2. `{cmd2}` (the hint pasted): top-1 **{top1[1]} %**",
        f"3. `{cmd3}` (the user's own labels file): top-1 **{top1[2]} %**\n",
        f"The hinted order {'equals' if hinted == truth else 'DIFFERS FROM'} the model's true order ({truth}).",
        f"Evidence: {ev['cpu']}, load average {ev.get('load_average')}; versions {ev['versions']}.\n"])
    out = ROOT / "benchmarks" / "results" / "unseen_class_order.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
