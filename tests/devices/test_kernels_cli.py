"""`edgemap devices calibrate-host` (kernel sampling) and kernel-level `edgemap estimate`, as a user runs them."""

import json
import os
import subprocess
import sys

import pytest


def edgemap(*args, env=None):
    return subprocess.run([sys.executable, "-m", "edgemap.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory):
    """A user's profile directory, calibrated here with a short kernel-sampling budget."""
    d = tmp_path_factory.mktemp("devices")
    r = edgemap("devices", "calibrate-host", "--budget", "12", env={"EDGEMAP_DEVICES": str(d)})
    assert r.returncode == 0, r.stderr
    assert (d / "host.yaml").is_file() and (d / "host.kernels.json.gz").is_file()
    assert "adaptive round" in r.stdout or "initial sampling" in r.stdout
    shown = edgemap("devices", "show", "host", env={"EDGEMAP_DEVICES": str(d), "COLUMNS": "250"})
    assert "kernel records" in shown.stdout and "sampled graphs" in shown.stdout
    return d


def test_estimate_on_host_is_kernel_level_and_layers_pair_predicted_with_measured(user_dir, models):
    env = {"EDGEMAP_DEVICES": str(user_dir)}
    r = edgemap("estimate", str(models["int8"]), "--threads", "1", "--json", "--layers", env=env)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["latency_s"]["how"].startswith("kernel-level") and d["latency_s"]["basis"] == "estimated"
    assert any(k["op"] == "QLinearConv" for k in d["kernels"])
    r = edgemap("estimate", str(models["int8"]), "--threads", "1", "--layers", "--measure", env={**env, "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert "per kernel" in r.stdout and "measured us" in r.stdout and "QLinearConv" in r.stdout


def test_another_cpu_is_scaled_from_host_kernels_and_labelled(user_dir, models):
    env = {"EDGEMAP_DEVICES": str(user_dir)}
    host = json.loads(edgemap("estimate", str(models["fp32"]), "--threads", "1", "--json", env=env).stdout)
    r = edgemap("estimate", str(models["fp32"]), "--device", "rpi4", "--threads", "1", "--json", "--layers", env=env)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert "scaled from the host" in d["latency_s"]["how"] and d["latency_s"]["basis"] == "estimated"
    assert {k["bound"] for k in d["kernels"]} <= {"compute", "memory", "overhead"}
    assert d["latency_s"]["value"] > host["latency_s"]["value"]  # a 1.5 GHz Cortex-A72 is slower than this host


def test_roofline_is_kept_where_kernels_cannot_say(user_dir, models):
    env = {"EDGEMAP_DEVICES": str(user_dir)}
    d = json.loads(edgemap("estimate", str(models["fp32"]), "--precision", "int8", "--json", env=env).stdout)
    assert "roofline" in d["latency_s"]["how"] and any("kernel-level prediction needs" in n for n in d["notes"])
    d = json.loads(edgemap("estimate", str(models["fp32"]), "--device", "jetson-orin-nano", "--unit", "gpu", "--json",
                           env=env).stdout)
    assert "roofline" in d["latency_s"]["how"]


def test_too_small_a_budget_is_one_line_exit_2(tmp_path):
    r = edgemap("devices", "calibrate-host", "--budget", "3", "--out", str(tmp_path / "host.yaml"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "budget" in r.stderr
