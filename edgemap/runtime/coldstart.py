"""Cold start of one model in this fresh process: `python -m edgemap.runtime.coldstart PATH BACKEND THREADS`.

Prints one JSON line: seconds to import the engine and load the model, seconds for the first
inference, and resident memory (psutil's current RSS, and the kernel's high-water mark for the process).
"""

from __future__ import annotations

import json
import sys
import time


def peak_rss_mib() -> float | None:
    """This process's high-water resident memory (VmHWM). Not ru_maxrss: Linux carries that over from
    the parent across fork+exec, so a child would report the benchmark process's own peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def measure(path: str, backend: str, threads: int) -> dict:
    """Load `path` with `backend`, run one batch-1 inference, and report times and memory."""
    import psutil

    rss_before = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    from edgemap.runtime.bench import input_batch
    from edgemap.runtime.registry import load_session

    session = load_session(backend, path, threads)
    t1 = time.perf_counter()
    session.run(input_batch(session, 1))
    t2 = time.perf_counter()
    return {"load_s": round(t1 - t0, 4), "first_inference_s": round(t2 - t1, 4), "cold_start_s": round(t2 - t0, 4),
            "rss_mib": round(psutil.Process().memory_info().rss / 2**20, 1), "peak_rss_mib": peak_rss_mib(),
            "python_baseline_rss_mib": round(rss_before / 2**20, 1)}


if __name__ == "__main__":
    from edgemap.errors import EdgemapError

    try:
        print(json.dumps(measure(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
    except EdgemapError as exc:
        print(f"edgemap: error: {exc}", file=sys.stderr)
        sys.exit(2)
