"""Trials without a shared file system: a packed trial runs with none of the driver's paths present, and what it
builds lands in the driver's cache with the same sha256 as a local build; a two-node Ray cluster gives the
same front as the local executor."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from rich.console import Console

from edgemap.core.artifact import Artifact
from edgemap.models import zoo
from edgemap.models.checkpoint import CheckpointInfo, save_checkpoint
from edgemap.search import portable, workflow
from edgemap.search.evaluate import evaluate_one
from edgemap.search.mapper import MapOptions, run_map
from edgemap.search.space import Candidate
from edgemap.search.strategy import Constraints


def _options(ckpt, out, **kw):
    base = dict(model=ckpt, out_dir=out, trials=3, backends=("onnxruntime", "openvino"), precisions=("fp32", "int8"),
                calibrations=("minmax",), threads=(1,), latency_runs=5, calib_samples=64, progress=False,
                constraints=Constraints(max_accuracy_drop=100.0))
    return MapOptions(**{**base, **kw})


def test_a_packed_trial_needs_none_of_the_drivers_files(tmp_path):
    torch.manual_seed(0)
    driver = tmp_path / "driver"
    ckpt = save_checkpoint(zoo.build("tiny"), CheckpointInfo(architecture="tiny"), driver / "tiny.safetensors")
    job = workflow.prepare(_options(ckpt, driver / "m"), Console(quiet=True))
    cand = Candidate(0.0, "int8", "minmax", "openvino", 1)
    packed = portable.pack(job.ctx)
    shutil.move(driver, tmp_path / "away")  # the worker's machine has none of the driver's files
    try:
        remote = portable.evaluate_packed(packed, cand.to_dict())
    finally:
        shutil.move(tmp_path / "away", driver)
    assert remote["metrics"]["error"] is None and remote["built_files"]
    got = portable.receive(remote, job.ctx.cache_dir)
    assert got.model_path.startswith(str(driver)) and Artifact(got.model_path, "openvino").sha256 == got.sha256
    local = evaluate_one(job.ctx, cand)  # now from the driver's cache: the very file the worker built
    assert local.sha256 == got.sha256 and local.accuracy == pytest.approx(got.accuracy)


def test_two_node_ray_cluster_gives_the_local_front(tmp_path):
    pytest.importorskip("ray")
    import ray
    from ray.cluster_utils import Cluster

    torch.manual_seed(0)
    ckpt = save_checkpoint(zoo.build("tiny"), CheckpointInfo(architecture="tiny"), tmp_path / "tiny.safetensors")
    kw = dict(device="rpi4", workers=2)  # estimated device latency: deterministic, so fronts must match exactly
    local = run_map(_options(ckpt, tmp_path / "local", **kw))
    # two nodes as on two machines: each its own Ray temp directory (short paths: Ray's sockets live there), and the
    # head runs no task, so every trial runs on the worker node, which shares nothing with the driver but the object store
    head_tmp, worker_tmp = (tempfile.mkdtemp(prefix=p, dir="/tmp") for p in ("ray-head-", "ray-worker-"))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "temp_dir": head_tmp})
    worker = cluster.add_node(num_cpus=2, temp_dir=worker_tmp)
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        assert worker.get_temp_dir_path() == worker_tmp and cluster.head_node.get_temp_dir_path() == head_tmp
        remote = run_map(_options(ckpt, tmp_path / "ray", executor="ray", **kw))
    finally:
        ray.shutdown()
        cluster.shutdown()
    for folder in (head_tmp, worker_tmp):  # each node kept its session (logs, sockets) in its own folder
        assert list(Path(folder).glob("session_*")), folder
        shutil.rmtree(folder, ignore_errors=True)
    assert sorted(local.front) == sorted(remote.front)
    assert {t.key: t.sha256 for t in local.trials} == {t.key: t.sha256 for t in remote.trials}
