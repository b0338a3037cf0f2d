"""prune_user_model's fine-tuning budget: config checks, the held-out images, and why a ratio is given up."""

import numpy as np
import pytest

from edgemap.data.dataset import ImageSet
from edgemap.errors import EdgemapError
from edgemap.pipeline.user_prune import PruneUserModel, given_up, hold_out


def test_the_budget_is_the_default_and_bad_budgets_are_one_line_errors():
    cfg = PruneUserModel(ratio=0.25)
    assert cfg.finetune_epochs is None and cfg.budget().max_steps == 300 and cfg.budget().optimizer == "auto"
    assert PruneUserModel(ratio=0.25, finetune_epochs=2, precision="bf16").finetune_epochs == 2  # the former way
    for kw, words in ((dict(finetune_steps=None), "give max_steps, max_minutes or both"),
                      (dict(optimizer="adam"), "optimizer must be one of"),
                      (dict(precision="bf16"), "bf16 fine-tuning runs by epochs"),
                      (dict(max_drop=-1.0), "max_drop must be >= 0")):
        with pytest.raises(EdgemapError, match=words):
            PruneUserModel(ratio=0.25, **kw)


def test_held_out_images_are_a_seeded_fifth_at_most_2000_and_none_for_tiny_sets():
    data = ImageSet(np.zeros((12000, 4, 4, 3), np.uint8), np.arange(12000) % 10, tuple("abcdefghij"), "x")
    train, val = hold_out(data, 0)
    assert len(val) == 2000 and len(train) == 10000
    assert len(hold_out(data.subset(slice(0, 3000)), 0)[1]) == 600 and len(hold_out(data, 0, 500)[1]) == 500
    again = hold_out(data, 0)[1]
    assert np.array_equal(again.images, val.images) and np.array_equal(again.labels, val.labels)
    small = data.subset(slice(0, 100))
    assert len(hold_out(small, 0)[1]) == 20
    assert hold_out(data.subset(slice(0, 40)), 0)[1] is None


def test_a_ratio_is_given_up_only_outside_the_bound_and_the_reason_says_by_how_much():
    result = {"stopped": "step budget spent", "best_accuracy": 81.2, "best_step": 250, "held_out": 500, "target": 84.3}
    why = given_up(result, 1.0)
    assert why.startswith("step budget spent: best 81.2 % at step 250 on 500 held-out images, 3.1 points below")
    assert given_up(result, 4.0) is None and given_up(result, None) is None
    assert given_up({**result, "target": None}, 1.0) is None
