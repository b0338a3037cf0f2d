"""The map's prune step: edgemap checkpoints and user models both fine-tune on the step/minute budget unless epochs
are given, with the criterion and schedule left to the probe."""

from __future__ import annotations

from edgemap.search.candidate import Candidate
from edgemap.search.compile import BuildSettings, compile_passes


def test_checkpoints_prune_on_the_budget_by_default_and_by_epochs_when_told() -> None:
    c = Candidate(0.5, "int8", "minmax", "onnxruntime", 1)
    step = compile_passes(c, BuildSettings(source_format="checkpoint", finetune_max_drop=0.5))[0]
    assert step["type"] == "prune_channels" and step["finetune_epochs"] is None and step["distill"]
    assert (step["finetune_steps"], step["max_drop"], step["importance"]) == (300, 0.5, "auto")
    fixed = compile_passes(c, BuildSettings(source_format="checkpoint", finetune_epochs=2))[0]
    assert fixed["finetune_epochs"] == 2 and fixed["distill"]
    user = compile_passes(c, BuildSettings(source_format="onnx", finetune_steps=40))[0]
    assert user["type"] == "prune_user_model" and user["finetune_steps"] == 40 and user["schedule"] == "auto"
