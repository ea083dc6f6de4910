"""The loss, presets, schedule and the training loop (progress, cancel, resume, stages)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from core.checkpoints.checkpoint import ModelInfo, load_checkpoint, read_info
from core.data.scenes import SCENE_CLASSES
from core.data.transforms import train_transform
from core.data.voc import SegmentationDataset, open_dataset
from core.errors import CheckpointError
from core.models import fcn_vgg16
from core.training.config import TrainConfig, preset
from core.training.losses import multi_output_loss, pixel_cross_entropy
from core.training.trainer import MODEL_FILE, enter_stage, lr_factor, train


def test_cross_entropy_ignores_void_and_averages_over_labelled_pixels() -> None:
    # Two pixels: class 0 with uniform scores over 2 classes (loss ln 2), one void pixel.
    scores = torch.zeros(1, 2, 1, 2)
    target = torch.tensor([[[0, 255]]])
    assert pixel_cross_entropy(scores, target).item() == pytest.approx(math.log(2))
    assert pixel_cross_entropy(scores, target, reduction="sum").item() == pytest.approx(
        math.log(2)
    )
    target2 = torch.tensor([[[0, 1]]])
    assert pixel_cross_entropy(scores, target2, reduction="sum").item() == pytest.approx(
        2 * math.log(2)
    )
    assert pixel_cross_entropy(scores, target2).item() == pytest.approx(math.log(2))


def test_all_void_gives_zero_loss_with_a_gradient() -> None:
    scores = torch.randn(1, 3, 4, 4, requires_grad=True)
    loss = pixel_cross_entropy(scores, torch.full((1, 4, 4), 255))
    loss.backward()
    assert loss.item() == 0 and scores.grad is not None


def test_multi_output_loss_weights_each_variant() -> None:
    target = torch.randint(0, 3, (1, 5, 5))
    outs = {v: torch.randn(1, 3, 5, 5) for v in ("32s", "16s", "8s")}
    total, parts = multi_output_loss(outs, target, {"32s": 0.5, "8s": 2.0})
    assert set(parts) == {"32s", "8s"}
    assert total.item() == pytest.approx(0.5 * parts["32s"] + 2.0 * parts["8s"], rel=1e-5)


def test_presets_carry_the_reference_values() -> None:
    paper = preset("paper")
    assert (paper.optimizer, paper.momentum, paper.lr, paper.reduction) == ("sgd", 0.9, 1e-4,
                                                                           "mean")
    heavy = [preset("heavy", stage=s) for s in ("32s", "16s", "8s")]
    assert [h.lr for h in heavy] == [1e-10, 1e-12, 1e-14]
    assert all(h.momentum == 0.99 and h.batch_size == 1 and h.reduction == "sum"
               and h.weight_decay == 5e-4 and h.bias_lr_mult == 2 for h in heavy)
    assert preset("heavy", stage="16s").loss_weights == {"16s": 1.0}
    assert preset("compact").loss_weights == {"32s": 1.0, "16s": 1.0, "8s": 1.0}
    with pytest.raises(ValueError, match="unknown preset"):
        preset("fast-and-loose")


def test_lr_schedule_warms_up_then_decays() -> None:
    cfg = TrainConfig(iterations=100, warmup=10, schedule="poly")
    assert lr_factor(cfg, 0) == pytest.approx(0.1)
    assert lr_factor(cfg, 9) == pytest.approx(1.0)
    assert lr_factor(cfg, 50) == pytest.approx(0.5**0.9)
    assert lr_factor(TrainConfig(schedule="fixed", warmup=0), 500) == 1.0


def test_entering_a_stage_zeroes_the_new_skip() -> None:
    model = fcn_vgg16(num_classes=3, width=0.0625)
    torch.nn.init.normal_(model.score_pool4.weight)
    torch.nn.init.normal_(model.score_pool3.weight)
    enter_stage(model, "8s")
    assert model.score_pool3.weight.abs().sum() == 0
    assert model.score_pool4.weight.abs().sum() > 0


def _setup(tiny_scenes: Path):
    pairs, names = open_dataset(tiny_scenes, split="train")
    val, _ = open_dataset(tiny_scenes, split="val")
    ds = SegmentationDataset(pairs, transform=train_transform(48, scale=(1.0, 1.0)))
    torch.manual_seed(0)
    model = fcn_vgg16(num_classes=len(names), width=0.0625, dropout=0.0)
    return model, ModelInfo(list(names), model.config), ds, val


def _cfg(**kw) -> TrainConfig:
    base = dict(iterations=6, batch_size=2, crop_size=48, lr=3e-3, warmup=0,
                checkpoint_every=3, schedule="fixed")
    return TrainConfig(**{**base, **kw})


def test_training_lowers_the_loss_reports_progress_and_saves(tiny_scenes, tmp_path) -> None:
    model, info, ds, val = _setup(tiny_scenes)
    seen = []
    cfg = _cfg(iterations=30, checkpoint_every=0)
    result = train(model, info, ds, cfg, tmp_path, val_pairs=val, progress=seen.append)
    assert [p.iteration for p in seen] == list(range(1, 31))
    assert seen[-1].eta_seconds == 0 and seen[0].lr == pytest.approx(3e-3)
    first = sum(p.loss for p in seen[:5]) / 5
    last = sum(p.loss for p in seen[-5:]) / 5
    assert last < first
    saved = read_info(tmp_path / MODEL_FILE)
    assert saved.training["iteration"] == 30 and saved.training["lr"] == 3e-3
    assert saved.metrics and set(saved.metrics[-1]) >= {"32s", "16s", "8s", "iteration"}
    assert 0 <= saved.metrics[-1]["8s"]["mean_iu"] <= 1
    assert result.checkpoint == tmp_path / MODEL_FILE and not result.cancelled


def test_cancel_leaves_the_last_checkpoint_intact(tiny_scenes, tmp_path) -> None:
    model, info, ds, _ = _setup(tiny_scenes)
    train(model, info, ds, _cfg(iterations=3), tmp_path)
    before = (tmp_path / MODEL_FILE).read_bytes()
    calls = {"n": 0}

    def cancel_after_two() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    result = train(model, info, ds, _cfg(iterations=10, checkpoint_every=5), tmp_path,
                   cancel=cancel_after_two)
    assert result.cancelled and result.iteration == 2
    assert (tmp_path / MODEL_FILE).read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_resume_continues_where_it_stopped(tiny_scenes, tmp_path) -> None:
    model, info, ds, _ = _setup(tiny_scenes)
    calls = {"n": 0}

    def cancel_at_five() -> bool:
        calls["n"] += 1
        return calls["n"] > 4  # checkpoint at 3, cancelled before iteration 5

    train(model, info, ds, _cfg(iterations=6), tmp_path, cancel=cancel_at_five)
    assert read_info(tmp_path / MODEL_FILE).training["iteration"] == 3
    fresh, info2, ds2, _ = _setup(tiny_scenes)
    seen = []
    result = train(fresh, info2, ds2, _cfg(iterations=6), tmp_path, resume=True,
                   progress=seen.append)
    assert [p.iteration for p in seen] == [4, 5, 6]
    assert result.iteration == 6
    assert read_info(tmp_path / MODEL_FILE).training["iteration"] == 6


def test_resume_without_state_is_a_clear_error(tiny_scenes, tmp_path) -> None:
    model, info, ds, _ = _setup(tiny_scenes)
    with pytest.raises(CheckpointError, match="Nothing to resume"):
        train(model, info, ds, _cfg(), tmp_path, resume=True)


def test_staged_training_updates_only_the_supervised_path(tiny_scenes, tmp_path) -> None:
    model, info, ds, _ = _setup(tiny_scenes)
    before = model.score_pool3.weight.clone()
    train(model, info, ds, _cfg(iterations=2, stage="32s"), tmp_path)
    trained, _ = load_checkpoint(tmp_path / MODEL_FILE)
    assert torch.equal(trained.score_pool3.weight, before)  # 8s-only layer untouched
    assert not torch.equal(trained.score_fr.weight, torch.zeros_like(trained.score_fr.weight))


def test_heavy_preset_trains_with_summed_loss(tiny_scenes, tmp_path) -> None:
    model, info, ds, _ = _setup(tiny_scenes)
    cfg = preset("heavy", iterations=2, checkpoint_every=0, crop_size=48, stage="32s")
    result = train(model, info, ds, cfg, tmp_path)
    assert len(result.loss_history) == 2
    assert read_info(tmp_path / MODEL_FILE).training["reduction"] == "sum"


def test_scene_classes_fit_the_dataset(tiny_scenes) -> None:
    _, names = open_dataset(tiny_scenes, split="train")
    assert tuple(names) == SCENE_CLASSES


def test_resumed_optimizer_buffers_follow_channels_last_parameters(tmp_path: Path) -> None:
    from core.training.state import load_train_state, save_train_state

    def step(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        out = model(torch.randn(1, 3, 40, 40))
        loss, _ = multi_output_loss(out, torch.randint(0, 3, (1, 40, 40)), {"8s": 1.0})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    torch.manual_seed(0)
    model = fcn_vgg16(num_classes=3, width=0.03125).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    step(model, optimizer)
    save_train_state(tmp_path / "state.safetensors", optimizer, 1)
    again = torch.optim.Adam(model.parameters(), lr=1e-3)
    load_train_state(tmp_path / "state.safetensors", again)
    conv = model.conv1_1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    for key in ("exp_avg", "exp_avg_sq"):
        restored = again.state[conv][key]
        assert restored.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(restored, optimizer.state[conv][key], rtol=0, atol=0)
    step(model, again)  # and it trains on


def test_training_survives_a_failing_compiler_with_border_reuse(tiny_scenes, tmp_path,
                                                                caplog, monkeypatch) -> None:
    import logging

    from torch._dynamo import register_backend

    from core.training.fast import FastOptions

    @register_backend(name="fcn_studio_test_no_compiler")
    def no_compiler(gm, example_inputs):
        raise RuntimeError("no C++ compiler found")

    import core.training.trainer as trainer
    from core.training.fast import Compiled, ReuseFCN

    made: list[Compiled] = []

    def spy(net, options, fallback=None):
        made.append(compile_model(net, options, fallback))
        return made[-1]

    from core.training.fast import compile_model

    monkeypatch.setattr(trainer, "compile_model", spy)
    model, info, ds, _ = _setup(tiny_scenes)
    fast = FastOptions(compile=True, compile_backend="fcn_studio_test_no_compiler",
                       border_reuse=True, channels_last=True)
    with caplog.at_level(logging.WARNING, logger="core.training.fast"):
        result = train(model, info, ds, _cfg(iterations=3, checkpoint_every=0), tmp_path,
                       fast=fast)
    assert result.iteration == 3 and (tmp_path / MODEL_FILE).is_file()
    assert "no C++ compiler found" in caplog.text and "training uncompiled" in caplog.text
    # it went on with the fast path it would have had uncompiled: border reuse included
    assert len(made) == 1 and made[0].compiled is None and isinstance(made[0].plain, ReuseFCN)
