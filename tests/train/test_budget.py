"""Fine-tuning on a budget: steps or minutes, AdamW for BN-free models, a range-tested rate, early stop in bound."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgemap.data.dataset import ImageSet
from edgemap.data.transforms import Normalization
from edgemap.errors import EdgemapError
from edgemap.models import zoo
from edgemap.train.budget import FinetuneBudget, choose_optimizer, finetune, has_batchnorm, lr_at
from edgemap.train.evaluate import evaluate
from edgemap.train.lr_range import lr_range_test


@pytest.fixture(autouse=True)
def one_thread():
    """The host is shared: one thread keeps these small runs fast and steady."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def bn_free(num_classes=4):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))


def colours(n=64, size=16):
    """Red, green, blue and grey images with noise: learnable in a few dozen steps by a BN-free net."""
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 4
    images = rng.integers(40, 90, (n, size, size, 3)).astype(np.uint8)
    for c in range(3):
        images[labels == c, :, :, c] += 120
    images[labels == 3] += 60
    return ImageSet(images, labels.astype(np.int64), ("red", "green", "blue", "grey"), "colours")


def test_optimizer_follows_the_model_and_the_schedule_warms_then_decays():
    assert not has_batchnorm(bn_free()) and has_batchnorm(zoo.build("tiny"))
    assert choose_optimizer(bn_free(), FinetuneBudget()) == "adamw"
    assert choose_optimizer(zoo.build("tiny"), FinetuneBudget()) == "sgd"
    assert choose_optimizer(bn_free(), FinetuneBudget(optimizer="sgd")) == "sgd"
    rates = [lr_at(s, 100, 1.0, 0.1) for s in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0) and rates[-1] < 0.01
    assert all(a >= b for a, b in zip(rates[9:], rates[10:]))


def test_range_test_suggests_a_finite_rate_and_leaves_the_model_unchanged():
    from edgemap.train.budget import batches, make_loss, make_optimizer

    model, data = bn_free(), colours()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    budget = FinetuneBudget(batch_size=8)
    rt = lr_range_test(model, make_optimizer("adamw", None), batches(data, Normalization(), budget),
                       make_loss(budget, None), steps=20)
    assert 1e-7 < rt.suggested < 0.1 and rt.steps >= 5 and len(rt.lrs) == len(rt.losses)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(EdgemapError, match="steps >= 5"):
        lr_range_test(model, make_optimizer("adamw", None), iter([]), make_loss(budget, None), steps=2)


def test_a_bn_free_model_learns_within_a_step_budget_and_reports_what_it_used():
    model, data = bn_free(), colours()
    norm = Normalization()
    start = evaluate(model, data, norm).top1
    res = finetune(model, data, norm, FinetuneBudget(max_steps=60, batch_size=8, eval_every=20, augment=False),
                   val_set=data)
    assert res.optimizer == "adamw" and res.range_test["suggested_lr"] == pytest.approx(res.lr, rel=1e-2)
    assert res.steps == 60 and res.stopped == "step budget spent"
    assert [h["step"] for h in res.history] == [0, 20, 40, 60]
    assert res.best_accuracy == max(h["accuracy"] for h in res.history) > start + 20
    assert evaluate(model, data, norm).top1 == pytest.approx(res.best_accuracy)  # ends on the best weights
    assert res.budget_used().startswith("60 of 60 steps (100 %), ") and res.budget_used().endswith(": step budget spent")


def test_training_stops_once_within_the_bound_or_when_the_minutes_run_out():
    data, norm = colours(), Normalization()
    model = bn_free()
    acc0 = evaluate(model, data, norm).top1
    res = finetune(model, data, norm, FinetuneBudget(max_steps=500, batch_size=8, eval_every=5, max_drop=1.0, lr=3e-3),
                   val_set=data, target=acc0 + 15)
    assert res.steps < 500 and res.stopped.startswith("within 1 points of") and res.best_accuracy >= acc0 + 14
    done = finetune(bn_free(), data, norm, FinetuneBudget(max_steps=50, max_drop=0.0, lr=1e-3), val_set=data, target=0.0)
    assert done.steps == 0 and done.stopped.endswith("at step 0")  # already within: no step spent
    timed = finetune(bn_free(), data, norm, FinetuneBudget(max_steps=None, max_minutes=0.002, batch_size=8, lr=1e-3))
    assert timed.stopped == "time budget spent" and 1 <= timed.steps and timed.seconds < 5
    assert "of 0.002 min" in timed.budget_used()


def test_distillation_from_a_teacher_and_bad_budgets():
    data, norm = colours(), Normalization()
    teacher = bn_free()
    finetune(teacher, data, norm, FinetuneBudget(max_steps=40, batch_size=8, lr=3e-3, augment=False))
    student = bn_free()
    res = finetune(student, data, norm, FinetuneBudget(max_steps=40, batch_size=8, lr=3e-3, augment=False),
                   val_set=data, teacher=teacher)
    agree = (evaluate.__globals__["predict_logits"](student, data, norm).argmax(1)
             == evaluate.__globals__["predict_logits"](teacher, data, norm).argmax(1)).mean()
    assert res.best_accuracy > 30 and agree > 0.5
    for kwargs, msg in (({"max_steps": None}, "give max_steps, max_minutes"), ({"optimizer": "lion"}, "must be one of"),
                        ({"lr": -1.0}, "lr must be > 0"), ({"max_steps": 0}, "max_steps must be >= 1")):
        with pytest.raises(EdgemapError, match=msg):
            FinetuneBudget(**kwargs)
    with pytest.raises(EdgemapError, match="needs a validation set"):
        finetune(bn_free(), data, norm, FinetuneBudget(max_drop=1.0))


def test_a_paired_drop_within_noise_of_the_bound_does_not_stop_at_step_0():
    from edgemap.train.evaluate import predict_logits

    data, norm = colours(), Normalization()
    student = bn_free()
    pred = predict_logits(student, data, norm).argmax(1)
    same = finetune(bn_free(), data, norm, FinetuneBudget(max_steps=10, max_drop=0.5, lr=1e-3), val_set=data,
                    reference=pred)  # the teacher's own decisions: drop 0 +- 0, within at once
    assert same.steps == 0 and "paired 0.00 ± 0.00" in same.stopped and same.decision["verdict"] == "within"
    teacher = pred.copy()  # the teacher right on 6 images the student gets wrong, wrong on 5 it gets right
    wrong, right = np.flatnonzero(pred != data.labels)[:6], np.flatnonzero(pred == data.labels)[:5]
    teacher[wrong], teacher[right] = data.labels[wrong], (data.labels[right] + 1) % 4
    noisy = finetune(bn_free(), data, norm, FinetuneBudget(max_steps=10, eval_every=5, max_drop=2.0, lr=1e-9,
                                                           augment=False), val_set=data, reference=teacher)
    # measured drop 1.56 points (within 2) but its paired SE is ~5: not stopped, and said so
    assert noisy.steps == 10 and noisy.stopped == "step budget spent"
    d = noisy.decision
    assert d["drop"] == pytest.approx(100 / 64, abs=0.01) and d["se"] > 4 and d["verdict"] == "undecided"
    assert [h["drop"] for h in noisy.history] == [pytest.approx(100 / 64, abs=0.01)] * 3
    with pytest.raises(EdgemapError, match="reference predictions"):
        finetune(bn_free(), data, norm, FinetuneBudget(max_steps=2), val_set=data, reference=pred[:3])


def test_a_range_test_whose_loss_never_falls_suggests_the_default_rate_and_says_so():
    from edgemap.train.budget import DEFAULT_LR, batches, make_optimizer

    model, data = bn_free(), colours()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    budget = FinetuneBudget(batch_size=8)
    rising = iter(range(1000))

    def loss(logits, _y, _x):  # a loss that only grows (as a freshly pruned model's may over a few noisy batches)
        return logits.sum() * 0 + float(next(rising))

    rt = lr_range_test(model, make_optimizer("adamw", None), batches(data, Normalization(), budget), loss, steps=12,
                       fallback=DEFAULT_LR["adamw"])
    assert rt.suggested == 1e-3 and "never fell below its first value" in rt.note and rt.to_dict()["note"] == rt.note
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    plain = lr_range_test(model, make_optimizer("adamw", None), batches(data, Normalization(), budget), loss, steps=12)
    assert plain.note is None and plain.suggested > 1e-7  # no fallback: the minimum past the first rates, / 10
