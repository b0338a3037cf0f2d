"""Kernel records are kept per instruction set: a CPU without VNNI (ONNX Runtime's MLAS runs other INT8 kernels there,
and offers no switch to run them on this host) is told to calibrate itself, and calibrate-host files its records
under its own tag beside the others. The CPU flags are faked; the kernels sampled are measured for real."""

import os
import shutil

from edgemap.devices.estimate import estimate
from edgemap.devices.kernels.store import isa_tag, read_records

SHIPPED = os.path.join(os.path.dirname(__file__), "..", "..", "edgemap", "devices", "profiles")
AVX2_ONLY = ["avx2"]  # what cpu_flags reports on an AVX2 CPU without AVX-512 or VNNI


def test_a_cpu_without_vnni_is_told_to_calibrate_then_calibrate_host_files_avx2_records(tmp_path, monkeypatch, models):
    from edgemap.devices.calibrate import calibrate_kernels

    for name in ("host.yaml", "host.kernels.json.gz"):
        shutil.copy(os.path.join(SHIPPED, name), tmp_path / name)
    monkeypatch.setenv("EDGEMAP_DEVICES", str(tmp_path))
    shipped_tags = set(read_records(tmp_path / "host.kernels.json.gz"))
    monkeypatch.setattr("edgemap.devices.kernels.store.cpu_flags", lambda *a: AVX2_ONLY)
    assert isa_tag() == "avx2" and "avx2" not in shipped_tags

    before = estimate(models["int8"], "host", threads=1)
    assert "roofline" in before.latency_s.how
    note = next(n for n in before.notes if "roofline" in n)
    assert "this CPU runs avx2 kernels" in note and "calibrate-host" in note and all(t in note for t in shipped_tags)

    path = calibrate_kernels(tmp_path / "host.yaml", budget_s=10, threads=(1,), log=lambda s: None)
    records = read_records(path)
    assert set(records) == shipped_tags | {"avx2"} and records["avx2"]["isa"] == "avx2"  # the others are kept
    assert records["avx2"]["kernels"] and "tie_margins" in records["avx2"]

    after = estimate(models["int8"], "host", threads=1)
    assert after.latency_s.how.startswith("kernel-level") and "(avx2," in after.latency_s.how
    assert not any("this CPU runs avx2 kernels" in n for n in after.notes)
