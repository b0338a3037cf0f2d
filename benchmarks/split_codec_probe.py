"""How long encoding and decoding the input take in a tight loop (how the profile measured them) versus the way
they run inside a request: after an idle gap, after other work has run (a model, the HTTP stack), and on the
server's decode path in a worker thread (issue 21 follow-up: PNG was under-predicted ~1.15 ms per request).

    EDGEMAP_CIFAR10=/work/shared/data/cifar10 flock /work/notes/s2/bench.lock nice -n 5 \
        .venv/bin/python benchmarks/split_codec_probe.py      # writes benchmarks/results/split_codec_probe.json

Each variant is timed round-robin (variant by variant within every round), ROUNDS rounds, medians reported.
"""

from __future__ import annotations

import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

ROUNDS = 300
GAP_S = 0.01  # the idle gap before an "after a gap" call (a request follows a pause in use and in split_bench)
KINDS = (("raw", None), ("png", None), ("jpeg", 75), ("webp", 75))


def _time(fn) -> float:  # noqa: ANN001
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1e3


def probe(images: np.ndarray, model: Path) -> dict:
    """Per kind: encode / decode ms in a tight loop, after an idle gap, after a model run, and decode in a thread."""
    from edgemap.runtime.onnxruntime_backend import OrtSession
    from edgemap.split import codec

    sess = OrtSession(model, threads=1, providers=["CPUExecutionProvider"])
    x = np.zeros(tuple(d or 1 for d in sess.inputs()[0].shape), np.float32)
    pool = ThreadPoolExecutor(1)
    res: dict = {f"{k}": {v: {"encode": [], "decode": []} for v in ("tight", "after_gap", "after_model", "thread")}
                 for k, _ in KINDS}
    for i in range(ROUNDS):
        im = images[i % len(images)]
        for kind, q in KINDS:
            p = codec.encode_image(im, kind, q or 75)
            r = res[kind]
            for _ in range(3):  # tight: back-to-back, as the profile measures (the last of three)
                e, d = _time(lambda: codec.encode_image(im, kind, q or 75)), _time(lambda: codec.decode_image(p.body, p.headers))
            r["tight"]["encode"].append(e)
            r["tight"]["decode"].append(d)
            time.sleep(GAP_S)
            r["after_gap"]["encode"].append(_time(lambda: codec.encode_image(im, kind, q or 75)))
            time.sleep(GAP_S)
            r["after_gap"]["decode"].append(_time(lambda: codec.decode_image(p.body, p.headers)))
            sess.run(x)
            r["after_model"]["encode"].append(_time(lambda: codec.encode_image(im, kind, q or 75)))
            sess.run(x)
            r["after_model"]["decode"].append(_time(lambda: codec.decode_image(p.body, p.headers)))
            time.sleep(GAP_S)
            r["thread"]["decode"].append(pool.submit(_time, lambda: codec.decode_image(p.body, p.headers)).result())
    pool.shutdown()
    sess.close()
    return {k: {v: {part: round(statistics.median(t), 4) for part, t in parts.items() if t} for v, parts in d.items()}
            for k, d in res.items()}


def main() -> None:
    from split_bench import WORK

    from edgemap.core.atomic import write_json
    from edgemap.core.evidence import machine_evidence
    from edgemap.data.resolve import load_eval_data

    cifar = load_eval_data(None).subset(slice(0, 200))
    from edgemap.split.source import resolve_source

    src = resolve_source("resnet9s", None, WORK)
    rec = {"command": " ".join(["python"] + sys.argv), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "rounds": ROUNDS, "gap_s": GAP_S, "resnet9s_32x32": probe(cifar.images, src.onnx_path)}
    rec["evidence"] = machine_evidence(1)
    write_json(Path("benchmarks/results/split_codec_probe.json"), rec)
    for k, v in rec["resnet9s_32x32"].items():
        print(k, v)
    print("load", rec["evidence"].get("load_average"))


if __name__ == "__main__":
    main()
