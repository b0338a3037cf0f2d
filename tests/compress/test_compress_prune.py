"""Channel pruning: channels really removed, couplings respected, classifier intact, checkpoints reload."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from edgemap.compress.prune import PruneChannels, alignment_note, parse_layer_ratios, prune_checkpoint, prune_model
from edgemap.core.passes import config_from_dict, config_to_dict
from edgemap.errors import EdgemapError
from edgemap.models import zoo
from edgemap.models.checkpoint import CheckpointInfo, conv_widths, layer_shapes, load_checkpoint, save_checkpoint
from edgemap.models.stats import count_macs


@pytest.mark.parametrize("name", ["tiny", "resnet9s", "mobilenetv2"])  # plain, residual, depthwise + residual
def test_half_the_channels_go_and_the_model_still_runs(name: str) -> None:
    torch.manual_seed(0)
    model = zoo.build(name)
    pruned = prune_model(model, PruneChannels(ratio=0.5))
    assert count_macs(pruned) < 0.45 * count_macs(model)
    assert pruned(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert pruned.classifier.out_features == 10
    assert count_macs(model) == count_macs(zoo.build(name))  # the original is untouched


def test_target_macs_is_reached() -> None:
    model = zoo.build("resnet9s")
    target = count_macs(model) // 3
    assert count_macs(prune_model(model, PruneChannels(ratio=None, target_macs=target, importance="l1"))) <= target


def test_taylor_importance_needs_data_and_uses_it() -> None:
    model = zoo.build("tiny")
    with pytest.raises(EdgemapError, match="labelled data"):
        prune_model(model, PruneChannels(importance="taylor"))
    batch = (torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,)))
    pruned = prune_model(model, PruneChannels(ratio=0.5, importance="taylor", iterative_steps=2), batch=batch)
    assert count_macs(pruned) < count_macs(model)


def test_pruned_checkpoint_reloads_with_its_widths(tmp_path: Path) -> None:
    pruned = prune_model(zoo.build("resnet9s"), PruneChannels(ratio=0.5)).eval()
    path = save_checkpoint(pruned, CheckpointInfo("resnet9s", layers=layer_shapes(pruned)), tmp_path / "p.safetensors")
    reloaded, info = load_checkpoint(path)
    x = torch.randn(2, 3, 32, 32)
    assert info.layers and torch.allclose(reloaded(x), pruned(x))


class _DictOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 8, 3), nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> dict:
        return {"logits": self.fc(self.conv(x).mean((2, 3)))}


class _NoGrad(_DictOut):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        with torch.no_grad():
            y = self.conv(x)
        return self.fc(y.mean((2, 3)))


@pytest.mark.parametrize("model", [_DictOut(), _NoGrad()])
def test_untraceable_models_are_refused(model: nn.Module) -> None:
    with pytest.raises(EdgemapError, match="trace"):
        prune_model(model, PruneChannels(ratio=0.5))


def test_prune_pass_reports_measured_latency_and_writes_a_loadable_file(tiny_ckpt: Path, ctx, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "pruned.safetensors"
    report = prune_checkpoint(PruneChannels(ratio=0.5, finetune_epochs=1, distill=True), tiny_ckpt, out, ctx)
    assert report.params[1] < report.params[0] and report.macs[1] < report.macs[0]
    assert report.file_bytes[1] < report.file_bytes[0]
    assert report.latency["before"]["n"] == 10 and report.latency["speedup"] > 0
    assert report.accuracy["after"]["n"] == 200 and report.extra["soft_targets"]["temperature"] == 4.0  # the teacher's
    model, _ = load_checkpoint(out)
    assert count_macs(model) == report.macs[1]
    assert (tmp_path / "state" / "prune_final" / "state.json").is_file()  # resumable fine-tuning


def test_the_report_says_when_pruned_widths_lose_their_multiple_of_8(ctx, tmp_path: Path) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    ckpt = save_checkpoint(zoo.build("resnet9s"), CheckpointInfo("resnet9s"), tmp_path / "r9.safetensors")
    ctx.latency_runs = 0
    odd = prune_checkpoint(PruneChannels(ratio=0.4, finetune_epochs=0), ckpt, tmp_path / "odd.safetensors", ctx)
    assert conv_widths(load_checkpoint(tmp_path / "odd.safetensors")[0])[:2] == [9, 19]
    assert [n for n in odd.notes if "not multiples of 8" in n and "round_to=8" in n and ", 19," in n]
    even = prune_checkpoint(PruneChannels(ratio=0.5, finetune_epochs=0), ckpt, tmp_path / "even.safetensors", ctx)
    assert not [n for n in even.notes if "multiples" in n]  # 8/16/32/64
    # round_to=8: 32 and wider to the nearest multiple (16/40/80), the 16-wide stem unrounded (10), and the note says so
    rounded = prune_checkpoint(PruneChannels(ratio=0.4, round_to=8, finetune_epochs=0), ckpt, tmp_path / "r.safetensors", ctx)
    assert conv_widths(load_checkpoint(tmp_path / "r.safetensors")[0]) == [10, 16, 16, 16, 40, 80, 80, 80]
    assert [n for n in rounded.notes if n.startswith("conv widths 10 are not") and "narrower layers are not rounded" in n]
    assert alignment_note([3, 6], [2, 5]) is None  # the original was not aligned either: nothing lost


def test_failed_prune_leaves_no_file(tiny_ckpt: Path, ctx, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "pruned.safetensors"
    with pytest.raises(EdgemapError, match="cannot reach"):
        prune_checkpoint(PruneChannels(ratio=None, target_macs=10, finetune_epochs=0), tiny_ckpt, out, ctx)
    assert not out.exists() and not out.with_suffix(".json").exists()


def _finetune_config(run_dir: Path) -> dict:
    import json

    return json.loads((run_dir / "prune_final" / "state.json").read_text())["config"]


def test_fine_tuning_keeps_the_checkpoints_jpeg_augmentation_unless_told(ctx, tmp_path: Path) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    info = CheckpointInfo("tiny", training={"config": {"jpeg_augment": 0.5}})
    ckpt = save_checkpoint(zoo.build("tiny"), info, tmp_path / "jpeg_trained.safetensors")
    prune_checkpoint(PruneChannels(ratio=0.5, finetune_epochs=1), ckpt, tmp_path / "a.safetensors", ctx)
    assert _finetune_config(ctx.run_dir)["jpeg_augment"] == 0.5
    ctx.run_dir = tmp_path / "state_b"
    prune_checkpoint(PruneChannels(ratio=0.5, finetune_epochs=1, jpeg_augment=0.0), ckpt, tmp_path / "b.safetensors", ctx)
    assert _finetune_config(ctx.run_dir)["jpeg_augment"] == 0.0


def test_fine_tuning_weight_decay_settings_reach_the_training_loop(tiny_ckpt: Path, ctx, tmp_path: Path) -> None:  # noqa: ANN001
    cfg = PruneChannels(ratio=0.5, finetune_epochs=1, weight_decay=1e-4, norm_bias_decay=False)
    report = prune_checkpoint(cfg, tiny_ckpt, tmp_path / "p.safetensors", ctx)
    tuned = _finetune_config(ctx.run_dir)
    assert (tuned["weight_decay"], tuned["norm_bias_decay"]) == (1e-4, False) and report.config["norm_bias_decay"] is False


@pytest.mark.skipif(not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()),
                    reason="this CPU has no bfloat16 kernels")
def test_fine_tuning_precision_reaches_the_training_loop(tiny_ckpt: Path, ctx, tmp_path: Path) -> None:  # noqa: ANN001
    report = prune_checkpoint(PruneChannels(ratio=0.5, finetune_epochs=1, distill=True, precision="bf16"), tiny_ckpt,
                              tmp_path / "p.safetensors", ctx)
    assert _finetune_config(ctx.run_dir)["precision"] == "bf16" and report.config["precision"] == "bf16"
    weights = load_checkpoint(tmp_path / "p.safetensors")[0].state_dict().values()
    assert all(w.dtype == torch.float32 for w in weights if w.is_floating_point())  # fp32 master weights are saved


def test_round_to_keeps_channel_counts_multiples() -> None:
    before = conv_widths(zoo.build("resnet9s"))
    widths = conv_widths(prune_model(zoo.build("resnet9s"), PruneChannels(ratio=0.4, round_to=8)))
    assert widths and all(w % 8 == 0 for w, b in zip(widths, before) if b >= 32)


def test_kept_layers_stay_whole_and_layer_ratios_override_the_ratio() -> None:
    model = zoo.build("resnet9s")  # widths 16, 32, 32, 32, 64, 128, 128, 128
    cfg = PruneChannels(ratio=0.5, keep_layers=("prep",), layer_ratios={"layer3.2.block.0.0": 0.5625})
    pruned = prune_model(model, cfg)
    assert conv_widths(pruned) == [16, 16, 16, 16, 32, 64, 56, 64]
    assert count_macs(prune_model(model, PruneChannels(ratio=0.5))) < count_macs(pruned) < count_macs(model)
    assert pruned(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_a_recipe_names_kept_layers_as_a_list() -> None:
    cfg = config_from_dict({"type": "prune_channels", "ratio": 0.5, "keep_layers": ["prep"]})
    assert cfg.keep_layers == ("prep",) and config_from_dict(config_to_dict(cfg)) == cfg


def test_unknown_or_contradictory_layer_names_are_refused() -> None:
    with pytest.raises(EdgemapError, match=r"no layer named stem in this model; its conv/linear layers: prep.0, layer1.0.0"):
        prune_model(zoo.build("resnet9s"), PruneChannels(ratio=0.5, keep_layers=("stem",)))
    with pytest.raises(EdgemapError, match="prep is both kept and given a ratio"):
        PruneChannels(ratio=0.5, keep_layers=("prep",), layer_ratios={"prep": 0.3})
    with pytest.raises(EdgemapError, match="keep_layers must be a list of module names"):
        PruneChannels(ratio=0.5, keep_layers="prep")


def test_layer_ratios_are_read_from_the_command_line_form() -> None:
    assert parse_layer_ratios(["prep.0=0.25", " layer2.0.0 =0.6"]) == {"prep.0": 0.25, "layer2.0.0": 0.6}
    for bad in ("prep.0", "=0.5", "prep.0=half"):
        with pytest.raises(EdgemapError, match="must read MODULE=RATIO"):
            parse_layer_ratios([bad])


@pytest.mark.parametrize("bad", [{"jpeg_augment": 1.5}, {"weight_decay": -1.0}, {"precision": "fp16"}, {"mixup": -1.0},
                                 {"mixup": 0.2}, {"finetune_steps": 0}, {"optimizer": "adam"}, {"importance": "l3"},
                                 {"max_drop": -1.0}, {"probe_steps": 2}, {"precision": "bf16"}, {"held_out": -1}])
def test_bad_fine_tuning_settings_are_refused(bad: dict) -> None:
    with pytest.raises(EdgemapError, match="prune_channels"):
        PruneChannels(ratio=0.5, **bad)


def test_mirror_averaged_teacher_averages_the_image_and_its_mirror() -> None:
    from edgemap.compress.finetune import MirrorAveraged

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = (model(x) + model(x.flip(3))) / 2
        assert torch.allclose(MirrorAveraged(model)(x), expected)
        assert not torch.allclose(MirrorAveraged(model)(x), model(x))  # a real second view, not the same logits


def test_prune_with_a_mirror_averaged_teacher_reports_that_teacher(tiny_ckpt: Path, ctx, tmp_path: Path) -> None:  # noqa: ANN001
    cfg = PruneChannels(ratio=0.5, finetune_epochs=1, distill=True, teacher_mirror=True, temperature=2.0)
    report = prune_checkpoint(cfg, tiny_ckpt, tmp_path / "pruned.safetensors", ctx)
    assert report.extra["teacher_accuracy"]["n"] == 200 and report.extra["soft_targets"]["temperature"] == 2.0
    assert any("mirror-averaged teacher" in line for line in report.lines())
    with pytest.raises(EdgemapError, match="needs distill"):
        PruneChannels(ratio=0.5, teacher_mirror=True)


def test_checkpoints_fine_tune_on_a_step_budget_by_default_with_the_criterion_chosen(tiny_ckpt: Path, ctx,  # noqa: ANN001
                                                                                     tmp_path: Path) -> None:
    ctx.latency_runs = 0
    cfg = PruneChannels(ratio=0.5, finetune_steps=12, distill=True, max_drop=100.0)
    report = prune_checkpoint(cfg, tiny_ckpt, tmp_path / "a.safetensors", ctx)
    info = report.extra["finetune"]
    assert info["steps"] == 12 and info["probe_steps"] == 9 and info["budget_used"].startswith("12 of 12 steps (100 %)")
    assert info["optimizer"] == "sgd" and info["held_out"] == 51  # BatchNorm: SGD
    assert info["stopped"].startswith("within 100 points") and " at step 3 (paired " in info["stopped"]  # not before
    assert " kept: " in info["pruning"]["reason"] and len(info["pruning"]["scores"]) == 3
    assert [n for n in report.notes if n.startswith("fine-tuning used 12 of 12 steps") and " kept: " in n]
    assert report.macs[1] < report.macs[0] and "pruned_before_finetune" not in report.accuracy
    assert load_checkpoint(tmp_path / "a.safetensors")[1].training["finetune_history"] == info["history"]
    early = prune_checkpoint(PruneChannels(ratio=0.5, finetune_steps=12, max_drop=100.0, importance="l2"), tiny_ckpt,
                             tmp_path / "b.safetensors", ctx).extra["finetune"]
    assert early["steps"] == 0 and early["stopped"].startswith("within 100 points") and early["given_up"] is None
    assert early["pruning"]["reason"] == "l2 one-shot: as given"
    fixed = prune_checkpoint(PruneChannels(ratio=0.5, finetune_epochs=0), tiny_ckpt, tmp_path / "c.safetensors", ctx)
    assert "finetune" not in fixed.extra and "pruned_before_finetune" in fixed.accuracy
