"""10,000 malformed requests (hypothesis) against a real `edgemap serve` process on loopback.

Runs tests/deploy/test_fuzz.py with EDGEMAP_FUZZ_EXAMPLES=10000 and EDGEMAP_FUZZ_SERVER=1: bodies of random
bytes under every content type, images cut short or with a broken signature, PNG headers claiming up to
2^31 x 2^31 pixels, malformed JSON and multipart. Passes when every answer is a 4xx with a reason, a valid
image still gets 200 afterwards, /metrics counted each 4xx, and the server exits 0 on SIGTERM.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/serve_fuzz.py        # ~2-3 min
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

EXAMPLES = 10_000
OUT = Path(__file__).parent / "results" / "serve_fuzz.json"


def main() -> None:
    from edgemap.core.evidence import machine_evidence

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "EDGEMAP_FUZZ_EXAMPLES": str(EXAMPLES), "EDGEMAP_FUZZ_SERVER": "1"}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pytest", "tests/deploy/test_fuzz.py", "-q", "-s", "-p", "no:cacheprovider"],
                       cwd=repo, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    m = re.search(r"fuzz: (\d+) malformed requests -> (\{.*\})", r.stdout)
    result = {"examples": EXAMPLES, "passed": r.returncode == 0, "seconds": round(seconds, 1),
              "requests": int(m.group(1)) if m else None, "codes": m.group(2) if m else None,
              "command": "PYTHONPATH=$PWD .venv/bin/python benchmarks/serve_fuzz.py",
              "tail": r.stdout[-1500:] if r.returncode else "", "evidence": machine_evidence()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    from compress_common import write_result_json  # the JSON is an export of the results store

    write_result_json(OUT, result)
    print(json.dumps({k: v for k, v in result.items() if k != "evidence"}, indent=2))
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
