"""The pruning criterion and schedule chosen for the model: each candidate probed on the same steps, the best kept
by held-out accuracy, and the reason recorded; what is given is not probed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgemap.compress.prune_budget import BudgetPlan
from edgemap.compress.prune import ratio_pruner
from edgemap.compress.prune_choice import choose_pruning, fixed_choice
from edgemap.data.dataset import ImageSet
from edgemap.data.transforms import Normalization
from edgemap.errors import EdgemapError
from edgemap.models.stats import count_macs
from edgemap.pipeline.user_prune import PruneUserModel
from edgemap.train.budget import FinetuneBudget
from edgemap.train.evaluate import evaluate


def plain_cnn() -> nn.Module:
    """No BatchNorm, as a model converted from ONNX usually is."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    return nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 16, 3, 2, 1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


@pytest.fixture
def split(sample: ImageSet) -> tuple[ImageSet, ImageSet]:
    """192 training and 40 held-out images of the shipped sample."""
    return sample.subset(slice(0, 192)), sample.subset(slice(900, 940))


def test_the_best_candidate_on_held_out_images_is_kept_with_its_reason(split) -> None:  # noqa: ANN001
    (train, val), model, norm = split, plain_cnn(), Normalization()
    budget = FinetuneBudget(max_steps=100, batch_size=16, lr=3e-3)
    prune = ratio_pruner(model, 0.5, None, (3, 32, 32), train, norm)
    pruned, choice, spent = choose_pruning(prune, train, val, norm, budget, teacher=model, probe_steps=6)
    assert set(choice.scores) == {"l2 one-shot", "taylor one-shot", f"{choice.importance} in 3 steps"}
    kept = next(n for n in choice.scores if n.startswith(choice.importance)
                and (n.endswith("one-shot") == (choice.schedule == "oneshot")))
    assert choice.scores[kept] == max(choice.scores.values())
    assert evaluate(pruned, val, norm).top1 == pytest.approx(choice.scores[kept], abs=0.01)  # the kept weights
    assert choice.reason.startswith(f"{kept} kept: ") and "40 held-out images after 6 probe steps" in choice.reason
    assert spent == 18 and choice.lr == 3e-3
    assert count_macs(pruned, (3, 32, 32)) < count_macs(model, (3, 32, 32))
    assert count_macs(model, (3, 32, 32)) == count_macs(plain_cnn(), (3, 32, 32))  # the original is untouched


def test_a_given_criterion_is_probed_only_over_the_schedule_and_a_range_test_sets_the_rate(split) -> None:  # noqa: ANN001
    (train, val), model = split, plain_cnn()
    budget = FinetuneBudget(max_steps=100, batch_size=16, range_test_steps=8)
    prune = ratio_pruner(model, 0.5, None, (3, 32, 32), train, Normalization())
    _, choice, _ = choose_pruning(prune, train, val, Normalization(), budget, None, importance="taylor", probe_steps=3)
    assert set(choice.scores) == {"taylor one-shot", "taylor in 3 steps"} and choice.lr > 0
    assert fixed_choice("l2", "oneshot", "as given").reason == "l2 one-shot: as given"


def test_bad_names_and_probe_sizes_are_one_line_errors() -> None:
    with pytest.raises(EdgemapError, match="prune_user_model: pruning importance must be auto, l1, l2 or taylor, got 'l3'"):
        PruneUserModel(ratio=0.25, importance="l3")
    with pytest.raises(EdgemapError, match="schedule must be auto, oneshot or iterative"):
        PruneUserModel(ratio=0.25, schedule="gradual")
    with pytest.raises(EdgemapError, match="probe_steps must be >= 3"):
        PruneUserModel(ratio=0.25, probe_steps=2)
    assert PruneUserModel(ratio=0.25).plan().probe_size() == 30
    assert PruneUserModel(ratio=0.25, finetune_steps=12).plan().probe_size() == 3
    assert PruneUserModel(ratio=0.25, finetune_steps=None, finetune_minutes=2).plan().probe_size() == 30
    assert BudgetPlan(FinetuneBudget(max_steps=100), probe_steps=7).probe_size() == 7


def test_given_validation_images_judge_the_fine_tuning_and_every_training_image_tunes(split, sample) -> None:  # noqa: ANN001
    from edgemap.compress.prune_budget import decision_line, given_up, prune_on_budget

    (train, val), model, norm = split, plain_cnn(), Normalization()
    prune = ratio_pruner(model, 0.5, None, (3, 32, 32), train, norm)
    plan = BudgetPlan(FinetuneBudget(max_steps=8, batch_size=16, lr=3e-3, eval_every=4, max_drop=0.5), "l2", "oneshot")
    _, result = prune_on_budget(prune, model, train, norm, model, plan, val_set=val)
    assert result["held_out"] == 40 and result["judged_on"].startswith("40 validation images of ")
    d = result["decision"]
    assert d["n"] == 40 and d["teacher"] == pytest.approx(result["target"], abs=0.01) and d["verdict"] in (
        "within", "outside", "undecided")
    assert decision_line(result).startswith("judged on 40 validation images") and "one-sided 95 %" in decision_line(result)
    _, own = prune_on_budget(prune, model, train, norm, model, plan)  # none given: training images held out
    assert own["held_out"] == 38 and own["judged_on"].startswith("38 training images held out")
    outside = {**result, "decision": {**d, "verdict": "outside", "lower": 2.0}}
    assert given_up(outside, 0.5).endswith("lower bound 2.00 > the fine-tuning bound 0.5")
    assert given_up({**result, "decision": {**d, "verdict": "undecided"}}, 0.5) is None  # within noise: not given up
