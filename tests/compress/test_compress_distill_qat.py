"""Distillation (Hinton loss, with/without baseline) and QAT exported to an INT8 model with its learned ranges."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch
from onnx import numpy_helper

from edgemap.compress.calibration import calibration_array
from edgemap.compress.distill import Distill, distill_checkpoint
from edgemap.compress.finetune import hinton_loss, soft_target_stats
from edgemap.compress.qat import Qat, export_qdq, fold_batchnorm, qat_checkpoint
from edgemap.data.transforms import Normalization
from edgemap.models import zoo
from edgemap.models.checkpoint import load_checkpoint


def test_hinton_loss_is_cross_entropy_at_alpha_zero_and_zero_when_matching_at_one() -> None:
    logits, labels = torch.randn(8, 10), torch.randint(0, 10, (8,))
    ce = torch.nn.functional.cross_entropy(logits, labels)
    assert torch.allclose(hinton_loss(logits, torch.randn(8, 10), labels, 4.0, 0.0), ce)
    assert hinton_loss(logits, logits.clone(), labels, 4.0, 1.0).abs() < 1e-6
    assert hinton_loss(logits, -logits, labels, 4.0, 1.0) > 0.1


def test_distill_pass_trains_student_and_baseline(tiny_ckpt: Path, ctx, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "student.safetensors"
    report = distill_checkpoint(Distill(student="tiny", epochs=1, batch_size=64), tiny_ckpt, out, ctx)
    assert {"teacher", "before", "after"} <= set(report.accuracy)
    assert len(report.extra["history"]) == len(report.extra["baseline_history"]) == 1
    assert (tmp_path / "state" / "distill" / "state.json").is_file()
    soft = report.extra["soft_targets"]  # an untrained teacher's targets are near uniform: the report says so
    assert soft["temperature"] == 4.0 and soft["images"] == 256 and soft["entropy_share"] > 0.9
    assert any("near uniform" in n for n in report.notes)
    student, info = load_checkpoint(out)
    assert info.architecture == "tiny" and student(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_distill_from_a_mirror_averaged_teacher(tiny_ckpt: Path, ctx, tmp_path: Path) -> None:  # noqa: ANN001
    from edgemap.compress.finetune import MirrorAveraged
    from edgemap.compress.measure import torch_accuracy
    from edgemap.models.stats import count_macs

    cfg = Distill(student="tiny", epochs=1, batch_size=64, teacher_mirror=True, compare_baseline=False)
    report = distill_checkpoint(cfg, tiny_ckpt, tmp_path / "student.safetensors", ctx)
    teacher, info = load_checkpoint(tiny_ckpt)
    assert report.accuracy["teacher"] == torch_accuracy(MirrorAveraged(teacher), ctx.eval_set, info.normalization)
    assert report.macs[0] == count_macs(teacher, info.input_shape)  # the teacher's own size, not two passes


def test_soft_targets_flatten_as_the_temperature_rises(sample) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    teacher = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    with torch.no_grad():
        teacher[1].weight.mul_(200)  # confident logits
    stats = [soft_target_stats(teacher, sample, Normalization(), t, n=64) for t in (0.1, 1.0, 10.0, 1000.0)]
    shares = [s["entropy_share"] for s in stats]
    assert shares == sorted(shares) and shares[0] < 0.3 and shares[-1] > 0.99
    assert stats[0]["max_prob"] > 0.9 > 0.2 > stats[-1]["max_prob"] and "near uniform" in stats[-1]["note"] and "note" not in stats[0]


def test_fold_batchnorm_keeps_the_function() -> None:
    torch.manual_seed(0)
    model = zoo.build("resnet9s")
    model.train()(torch.randn(16, 3, 32, 32))  # non-trivial running statistics
    model.eval()
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(folded(x), model(x), atol=1e-4)


def test_learned_ranges_reach_the_int8_model(sample, tmp_path: Path) -> None:  # noqa: ANN001
    model = fold_batchnorm(zoo.build("tiny"))
    calib = calibration_array(sample, 16, Normalization())
    out = tmp_path / "qat.onnx"
    export_qdq(model, {"features.0.0": (-3.0, 5.0)}, out, calib, (3, 32, 32), 16)
    graph = onnx.load(str(out)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    q = next(n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "input")
    assert float(inits[q.input[1]]) == pytest.approx(8.0 / 255, rel=1e-3)


def test_qat_pass_writes_int8_and_compares_with_ptq(tiny_ckpt: Path, ctx, tmp_path: Path) -> None:  # noqa: ANN001
    report = qat_checkpoint(Qat(epochs=1, samples=16, batch_size=64), tiny_ckpt, tmp_path / "qat.onnx", ctx)
    assert report.extra["int8"]["integer_by_type"]["QLinearConv"] == 2
    assert report.extra["ptq_static_int8_accuracy"]["n"] == 200 and report.accuracy["after"]["n"] == 200


def test_distillation_keeps_the_teachers_jpeg_augmentation_unless_told(ctx, tmp_path: Path) -> None:  # noqa: ANN001
    """A pruned student distilled again (a second fine-tuning stage) trains on the inputs the teacher was trained
    for: the JPEG share comes from the teacher's sidecar, for the student and its no-teacher baseline alike."""
    import json

    from edgemap.errors import EdgemapError
    from edgemap.models.checkpoint import CheckpointInfo, save_checkpoint

    torch.manual_seed(0)
    teacher = save_checkpoint(zoo.build("tiny"), CheckpointInfo("tiny", training={"config": {"jpeg_augment": 0.5}}),
                              tmp_path / "teacher.safetensors")
    report = distill_checkpoint(Distill(student="tiny", epochs=1, batch_size=64), teacher, tmp_path / "a.safetensors", ctx)
    for tag in ("distill", "distill_baseline"):
        assert json.loads((ctx.run_dir / tag / "state.json").read_text())["config"]["jpeg_augment"] == 0.5
    assert report.extra["jpeg_augment"] == 0.5
    ctx.run_dir = tmp_path / "state_b"
    report = distill_checkpoint(Distill(student="tiny", epochs=1, batch_size=64, jpeg_augment=0.0, compare_baseline=False),
                                teacher, tmp_path / "b.safetensors", ctx)
    assert json.loads((ctx.run_dir / "distill" / "state.json").read_text())["config"]["jpeg_augment"] == 0.0
    with pytest.raises(EdgemapError, match="distill: jpeg_augment must lie in \\[0, 1\\], got 1.5"):
        Distill(jpeg_augment=1.5)


@pytest.mark.skipif(not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()),
                    reason="this CPU has no bfloat16 kernels")
def test_distillation_precision_reaches_student_and_baseline(tiny_ckpt: Path, ctx, tmp_path: Path) -> None:  # noqa: ANN001
    import json

    distill_checkpoint(Distill(student="tiny", epochs=1, batch_size=64, precision="bf16"), tiny_ckpt,
                       tmp_path / "s.safetensors", ctx)
    for tag in ("distill", "distill_baseline"):
        assert json.loads((ctx.run_dir / tag / "state.json").read_text())["config"]["precision"] == "bf16"


def test_unknown_distillation_precision_is_refused() -> None:
    from edgemap.errors import EdgemapError

    with pytest.raises(EdgemapError, match="distill: precision must be one of fp32, bf16, got 'fp16'"):
        Distill(precision="fp16")


def test_negative_mixup_is_refused() -> None:
    from edgemap.errors import EdgemapError

    with pytest.raises(EdgemapError, match="distill: mixup must be >= 0"):
        Distill(mixup=-0.5)
