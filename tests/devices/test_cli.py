"""`edgemap devices` and `edgemap estimate` as a user meets them: subprocesses, exit codes, one-line errors."""

import json
import subprocess
import sys

import yaml

from edgemap.devices import catalogue


def edgemap(*args, env=None):
    return subprocess.run([sys.executable, "-m", "edgemap.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_devices_lists_and_shows_with_sources():
    r = edgemap("devices")
    assert r.returncode == 0, r.stderr
    assert "rpi5" in r.stdout and "stm32h7" in r.stdout
    r = edgemap("devices", "show", "jetson-orin-nano")
    assert r.returncode == 0, r.stderr
    assert "gpu (gpu)" in r.stdout and "datasheet" in r.stdout and "68" in r.stdout


def test_estimate_json(models):
    r = edgemap("estimate", str(models["int8"]), "--device", "rpi4", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["device"] == "rpi4" and d["precision"] == "int8" and d["fits"] is True
    assert d["latency_s"]["basis"] == "estimated" and d["flash_bytes"]["basis"] == "measured"


def test_malformed_user_profile_is_one_line_exit_2(tmp_path, models):
    data = yaml.safe_load((catalogue.SHIPPED_DIR / "rpi4.yaml").read_text())
    data["compute_units"][0]["cores"] = "four"
    bad = tmp_path / "mine.yaml"
    bad.write_text(yaml.safe_dump(data))
    r = edgemap("estimate", str(models["fp32"]), "--device", str(bad))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1
    assert str(bad) in lines[0] and "field compute_units.0.cores" in lines[0]
