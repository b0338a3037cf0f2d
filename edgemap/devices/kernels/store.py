"""Sampled-kernel records beside a device profile (NAME.kernels.json.gz), one per instruction set.

INT8 (and FP32) kernels run different code on CPUs with and without VNNI dot-product
instructions (and with AVX2 only, or NEON), so the file keeps one record per instruction-set
tag and a predictor is built from the record of the CPU it is asked about. The record holds
the measurements themselves (not pickled estimators): the regressors are refitted from them
when first needed, so the file stays readable and independent of the scikit-learn version.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

from edgemap.core.atomic import atomic_path
from edgemap.core.evidence import cpu_flags
from edgemap.errors import EdgemapError

FORMAT = 1
SUFFIX = ".kernels.json.gz"
FIT_CAP = 300  # kernel samples per (type, threads) used to fit: keeps a refit to seconds


def isa_tag(flags: list[str] | None = None) -> str:
    """The instruction-set class that decides which INT8/FP32 kernels MLAS runs."""
    have = set(cpu_flags(("avx512f", "avx512_vnni", "avx_vnni", "avx2", "amx_tile", "neon", "asimddp")) if flags is None else flags)
    for tag in ("amx_tile", "avx512_vnni", "avx_vnni", "avx512f", "avx2", "asimddp", "neon"):
        if tag in have:
            return tag
    return "generic"


def kernels_path(profile_path: str | Path) -> Path:
    """Where the kernel records of the profile at `profile_path` live (beside it)."""
    p = Path(profile_path)
    return p.with_name(p.stem + SUFFIX)


def read_records(path: Path) -> dict:
    """The file's {isa tag: record} (empty when the file does not exist)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(gzip.decompress(path.read_bytes()))
    except (OSError, ValueError) as exc:
        raise EdgemapError(f"{path}: not a kernel-record file ({exc})") from None
    if data.get("format") != FORMAT:
        raise EdgemapError(f"{path}: kernel-record format {data.get('format')!r}, this edgemap reads {FORMAT}; "
                           "re-run edgemap devices calibrate-host")
    return data["by_isa"]


def write_record(path: Path, tag: str, record: dict) -> Path:
    """Store `record` under `tag`, keeping the records of other instruction sets (atomic write)."""
    records = read_records(path)
    records[tag] = record
    body = gzip.compress(json.dumps({"format": FORMAT, "by_isa": records}, separators=(",", ":")).encode(), mtime=0)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(body)
    _load.cache_clear()
    return path


def load_predictor(path: Path, tag: str | None = None):  # noqa: ANN201 - (KernelPredictor, record) or None
    """The predictor fitted on the record for `tag` (this CPU's by default), or None when there is none."""
    if not path.is_file():
        return None
    return _load(str(path), path.stat().st_mtime_ns, tag or isa_tag())


@lru_cache(maxsize=8)
def _load(path: str, mtime: int, tag: str):  # noqa: ANN202 - mtime keys the cache
    from edgemap.devices.kernels.campaign import as_samples
    from edgemap.devices.kernels.predictor import KernelPredictor

    records = read_records(Path(path))
    if tag not in records:
        return None
    rec = records[tag]
    return KernelPredictor(capped(as_samples(rec["kernels"], rec["features"])), rec["calls"]), rec


def capped(samples: list[dict], cap: int = FIT_CAP) -> list[dict]:
    """At most `cap` samples per (type, threads), spread evenly over the sampled sizes (deterministic)."""
    groups: dict[tuple, list[dict]] = {}
    for s in samples:
        groups.setdefault((s["key"], s["threads"]), []).append(s)
    out = []
    for g in groups.values():
        if len(g) > cap:
            g = sorted(g, key=lambda s: s["f"]["macs"] + s["f"]["out_bytes"])
            g = [g[int(i * len(g) / cap)] for i in range(cap)]
        out.extend(g)
    return out
