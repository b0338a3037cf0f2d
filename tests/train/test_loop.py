import numpy as np
import pytest
import torch

from edgemap.data.cifar10 import load_npz
from edgemap.data.transforms import Normalization, to_nchw_float
from edgemap.errors import EdgemapError
from edgemap.models import zoo
from edgemap.train.augment import random_crop_flip
from edgemap.train.evaluate import evaluate
from edgemap.train import loop
from edgemap.train.loop import TrainConfig, lr_at, train

FAST = dict(batch_size=8, lr=0.05, label_smoothing=0.0, augment=False, threads=1)


def test_training_learns_a_learnable_task(tiny_npz):
    data = load_npz(tiny_npz)
    torch.manual_seed(0)
    model = zoo.build("tiny")
    norm = Normalization()
    before = evaluate(model, data, norm).top1
    state = train(model, data, TrainConfig(epochs=25, **FAST), norm, progress=False)
    after = evaluate(model, data, norm).top1
    assert state["history"][-1]["loss"] < state["history"][0]["loss"]
    assert after >= 60 and after > before + 20


@pytest.mark.parametrize("norm_bias_decay", [True, False])  # one optimizer group, or two whose momenta must not swap
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tiny_npz, tmp_path, norm_bias_decay):
    data = load_npz(tiny_npz)
    norm = Normalization()
    cfg = TrainConfig(epochs=3, norm_bias_decay=norm_bias_decay, **{**FAST, "augment": True, "pad": 2})
    torch.manual_seed(1)
    straight = zoo.build("tiny")
    init = {k: v.clone() for k, v in straight.state_dict().items()}
    train(straight, data, cfg, norm, progress=False)
    # an interrupted run: killed in the middle of epoch 3, then restarted from the run directory
    part = zoo.build("tiny")
    part.load_state_dict(init)
    calls = {"n": 0}

    def dies_in_epoch_three(logits, y, _x):
        calls["n"] += 1
        if calls["n"] == 12:  # 5 steps per epoch
            raise KeyboardInterrupt
        return torch.nn.functional.cross_entropy(logits, y)

    with pytest.raises(KeyboardInterrupt):
        train(part, data, cfg, norm, run_dir=tmp_path, loss_fn=dies_in_epoch_three, progress=False)
    resumed = zoo.build("tiny")
    state = train(resumed, data, cfg, norm, run_dir=tmp_path, progress=False)
    assert state["epoch"] == 3
    for k, v in straight.state_dict().items():
        assert torch.allclose(v.float(), resumed.state_dict()[k].float(), atol=1e-6), k


def test_run_dir_with_other_settings_is_refused(tiny_npz, tmp_path):
    data = load_npz(tiny_npz)
    train(zoo.build("tiny"), data, TrainConfig(epochs=1, **FAST), Normalization(), run_dir=tmp_path, progress=False)
    with pytest.raises(EdgemapError, match="different settings"):
        train(zoo.build("tiny"), data, TrainConfig(epochs=2, **FAST), Normalization(), run_dir=tmp_path, progress=False)


def test_one_cycle_schedule_rises_then_falls_to_zero():
    cfg = TrainConfig(epochs=1, lr=1.0, warmup=0.25)
    lrs = [lr_at(cfg, s, 100) for s in range(100)]
    assert max(lrs) == pytest.approx(1.0) and lrs.index(max(lrs)) == 24
    assert lrs[-1] < 0.02 and all(a >= b for a, b in zip(lrs[24:], lrs[25:]))


def test_augmentation_keeps_shape_and_moves_pixels():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    out = random_crop_flip(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert not torch.equal(out, x)
    # every output row is a (possibly flipped, shifted) piece of the reflect-padded input: values stay in range
    assert out.min() >= x.min() and out.max() <= x.max()


BF16 = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


@pytest.mark.skipif(not BF16, reason="this CPU has no bfloat16 kernels")
def test_bf16_training_tracks_fp32_keeps_fp32_weights_and_runs_the_model_in_bf16(tiny_npz):
    data = load_npz(tiny_npz)
    losses = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = zoo.build("tiny")
        seen = []
        model.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
        state = train(model, data, TrainConfig(epochs=25, precision=precision, **FAST), Normalization(), progress=False)
        losses[precision] = [h["loss"] for h in state["history"]]
    assert set(seen) == {torch.bfloat16}  # the bf16 forward pass really ran under autocast
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32
    assert losses["bf16"][-1] < 0.7 * losses["bf16"][0]
    assert losses["bf16"][-1] == pytest.approx(losses["fp32"][-1], abs=0.05)  # same trajectory, bf16 rounding aside
    assert evaluate(model.eval(), data, Normalization()).top1 >= 60


def test_bf16_is_refused_on_a_cpu_without_bf16_kernels(tiny_npz, monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    with pytest.raises(EdgemapError, match="bf16 training needs a CPU"):
        train(zoo.build("tiny"), load_npz(tiny_npz), TrainConfig(epochs=1, precision="bf16", **FAST), Normalization(),
              progress=False)


def test_a_run_saved_before_precision_existed_resumes_as_fp32():
    old = {k: v for k, v in TrainConfig(epochs=2).__dict__.items() if k != "precision"}
    assert loop._same_run(old) == loop._same_run(TrainConfig(epochs=2).__dict__)
    assert loop._same_run(old) != loop._same_run(TrainConfig(epochs=2, precision="bf16").__dict__)
    older = {k: v for k, v in old.items() if k != "mixup"}  # saved before mixup existed: resumes without it
    assert loop._same_run(older) == loop._same_run(TrainConfig(epochs=2).__dict__)
    assert loop._same_run(older) != loop._same_run(TrainConfig(epochs=2, mixup=0.2).__dict__)
    no_key = {k: v for k, v in older.items() if k != "norm_bias_decay"}  # saved before the option: decayed everything
    assert loop._same_run(no_key) == loop._same_run(TrainConfig(epochs=2).__dict__)
    assert loop._same_run(no_key) != loop._same_run(TrainConfig(epochs=2, norm_bias_decay=False).__dict__)


@pytest.mark.parametrize("norm_bias_decay", [True, False])
def test_norm_bias_decay_false_leaves_batchnorm_and_biases_to_the_loss_alone(tiny_npz, norm_bias_decay):
    # a loss with zero gradient: only weight decay moves the parameters, so what moves is what is decayed
    torch.manual_seed(0)
    model = zoo.build("tiny")
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 1:
                p.fill_(0.5)  # BatchNorm shifts start at 0, which decay cannot shrink
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = TrainConfig(epochs=1, weight_decay=0.1, norm_bias_decay=norm_bias_decay, **FAST)
    train(model, load_npz(tiny_npz), cfg, Normalization(), loss_fn=lambda logits, _y, _x: 0 * logits.sum(), progress=False)
    after = dict(model.named_parameters())
    one_d = [n for n, p in after.items() if p.ndim == 1]
    assert one_d and any("bias" in n for n in one_d) and len(one_d) < len(after)
    for name, p in after.items():
        shrank = bool((p.detach().abs() < before[name].abs()).any())
        assert shrank == (p.ndim > 1 or norm_bias_decay), name
        if not shrank:
            assert torch.equal(p.detach(), before[name]), name


def test_mixup_blends_images_and_targets_with_one_weight():
    n = 8  # image i is filled with the value i and has label i: a blended image's value is its targets' mean label
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, 4, 4).contiguous()
    y = torch.arange(n)
    mixed, targets = loop.mixup(x, y, 0.4, n, torch.Generator().manual_seed(3))
    assert targets.shape == (n, n) and torch.allclose(targets.sum(1), torch.ones(n))
    assert torch.allclose(mixed.mean((1, 2, 3)), targets @ torch.arange(n, dtype=torch.float32), atol=1e-5)
    assert not torch.equal(mixed, x)  # Beta(0.4, 0.4) and a shuffle: the batch really changed
    again, _ = loop.mixup(x, y, 0.4, n, torch.Generator().manual_seed(3))
    assert torch.equal(mixed, again)  # seeded by the epoch generator: a resumed run blends the same way


def test_mixup_training_learns_and_the_teacher_labels_the_blended_images(tiny_npz):
    from edgemap.compress.finetune import distillation_loss

    data = load_npz(tiny_npz)
    norm = Normalization()
    torch.manual_seed(0)
    teacher = zoo.build("tiny")
    train(teacher, data, TrainConfig(epochs=25, **FAST), norm, progress=False)
    seen = []
    teacher.register_forward_hook(lambda _m, inp, _o: seen.append(inp[0].detach().clone()))
    student = zoo.build("tiny")
    before = evaluate(student, data, norm).top1
    state = train(student, data, TrainConfig(epochs=25, mixup=0.2, **FAST), norm, progress=False,
                  loss_fn=distillation_loss(teacher, temperature=4.0, alpha=0.5))
    clean = torch.from_numpy(to_nchw_float(data.images, norm))
    batch = seen[0].flatten(1)
    in_data = [(clean.flatten(1) - row).abs().amax(1).min() < 1e-6 for row in batch]
    assert sum(in_data) < len(batch)  # the teacher saw blended images, not only training images
    assert state["history"][-1]["loss"] < state["history"][0]["loss"]
    assert evaluate(student, data, norm).top1 >= before + 20


@pytest.mark.parametrize("kwargs", [dict(epochs=0), dict(schedule="step"), dict(label_smoothing=1.5),
                                    dict(precision="fp16"), dict(mixup=-0.2)])
def test_bad_config(kwargs):
    with pytest.raises(EdgemapError):
        TrainConfig(**kwargs)


def test_jpeg_augmentation_changes_pixels_like_a_jpeg_round_trip(tiny_npz):
    from edgemap.train.loop import _jpeg_copy

    data = load_npz(tiny_npz)
    norm = Normalization()
    jpeg = _jpeg_copy(data, norm).numpy()
    exact = torch.from_numpy(to_nchw_float(data.images, norm)).numpy()
    diff = np.abs(jpeg - exact)
    assert diff.max() > 0.05 and diff.mean() < 0.5  # degraded, but the same images
    with pytest.raises(EdgemapError, match="jpeg augmentation"):
        TrainConfig(jpeg_augment=1.5)


def test_fine_tuning_starts_from_the_given_checkpoint(tmp_path, tiny_npz):
    from edgemap.commands.train import _initial_model
    from edgemap.models.checkpoint import CheckpointInfo, save_checkpoint

    m = zoo.build("tiny")
    path = save_checkpoint(m, CheckpointInfo(architecture="tiny", metrics={"test": {"top1": 50.0}}), tmp_path / "p.safetensors")
    model, parent = _initial_model("tiny", path)
    assert torch.equal(model.classifier.weight, m.classifier.weight)
    assert parent["metrics"]["test"]["top1"] == 50.0
    with pytest.raises(EdgemapError, match="is a tiny, not a resnet9s"):
        _initial_model("resnet9s", path)
