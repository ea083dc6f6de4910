"""Fine-tuning on the user's corrections: fast (heads only, cached features) or full.

Fast mode freezes the VGG trunk, runs it once per image (dropout off) and caches pool3,
pool4 and fc7; each iteration then runs only the score layers and the deconvolutions, so
a few hundred iterations take seconds on a CPU. Full mode trains every layer on the images
(for a GPU). The model passed in is never modified: a deep copy is trained and, unless the
run is cancelled, saved atomically as a new checkpoint whose parent is the old one.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.checkpoints.checkpoint import ModelInfo, save_checkpoint
from core.data.imageio import check_mask, read_image, read_mask
from core.data.palette import VOID
from core.errors import Cancelled, FCNStudioError
from core.metrics import VariantScores
from core.models.fcn import FCN
from core.models.upsampling import CroppedUpsampling, Upsampling
from core.training.config import TrainConfig
from core.training.defaults import MODE_DEFAULTS, SEED
from core.training.losses import multi_output_loss
from core.training.trainer import TrainProgress, lr_factor, make_optimizer
from core.variants import VARIANTS

log = logging.getLogger(__name__)

__all__ = ["FineTuneConfig", "FineTuneResult", "Item", "fine_tune"]

Item = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]
"""``(rgb H x W x 3 uint8, mask H x W uint8 (255 = ignore), corrected H x W bool or None)``."""


@dataclass(frozen=True)
class FineTuneConfig:
    """How to fine-tune.

    Attributes:
        mode: "fast" (trunk frozen, features cached, heads trained) or "full" (all layers).
        iterations: Optimizer steps.
        lr: Base learning rate (biases get twice as much, as in training).
        optimizer: "adam" or "sgd".
        weight_decay: L2 penalty on weights.
        batch_size: Images per step.
        corrected_only: Compute the loss only on corrected pixels (the rest count as 255);
            images without a corrections record count all their labelled pixels.
        variant_weights: Loss weight of each output.
        mix_original: ``(image, mask)`` file pairs of the original training data to mix in.
        mix_count: How many of them to use (default: as many as corrected images).
        hflip: Also train on mirrored images (fast mode caches both; full mode flips at
            random).
        crop_size: Full mode only: random square crops of this size (None: whole images).
        schedule: "fixed", "poly" or "cosine" learning-rate decay.
        seed: Seeds image order, sampling of the original data and flips.
        name: Name of the new checkpoint (default: the old one's).
        pixels_per_step: Fast mode: each image's loss in a step uses a random grid of
            about this many pixels (a new grid every step); 0 uses every pixel.
    """

    mode: str = "fast"
    iterations: int = MODE_DEFAULTS["fast"][0]
    lr: float = MODE_DEFAULTS["fast"][1]
    optimizer: str = "adam"
    weight_decay: float = 0.0
    batch_size: int = 4
    corrected_only: bool = False
    variant_weights: dict[str, float] = field(
        default_factory=lambda: {"32s": 1.0, "16s": 1.0, "8s": 1.0}
    )
    mix_original: list[tuple[Path, Path]] | None = None
    mix_count: int | None = None
    hflip: bool = False
    crop_size: int | None = None
    schedule: str = "poly"
    seed: int = SEED
    name: str | None = None
    pixels_per_step: int = 16384

    @classmethod
    def for_mode(cls, mode: str = "fast", **changes: Any) -> FineTuneConfig:
        """The defaults of ``mode`` (:data:`core.training.defaults.MODE_DEFAULTS`) with
        ``changes`` (None values keep the defaults): the app's Train and the CLI's
        ``train --heads-only`` build their runs with it, so the same data gives the same
        model."""
        if mode not in MODE_DEFAULTS:
            raise ValueError(f"mode must be one of {sorted(MODE_DEFAULTS)}, not {mode!r}")
        iterations, lr = MODE_DEFAULTS[mode]
        kw: dict[str, Any] = {"mode": mode, "iterations": iterations, "lr": lr}
        kw.update({k: v for k, v in changes.items() if v is not None})
        return cls(**kw)

    def __post_init__(self) -> None:
        if self.mode not in ("fast", "full"):
            raise ValueError(f"mode must be 'fast' or 'full', not {self.mode!r}")
        if self.iterations < 1 or self.batch_size < 1:
            raise ValueError("iterations and batch_size must be positive")
        if not self.variant_weights or set(self.variant_weights) - set(VARIANTS):
            raise ValueError(f"variant_weights must name some of {VARIANTS}")

    @property
    def train_config(self) -> TrainConfig:
        """The equivalent :class:`TrainConfig` (optimizer and schedule settings)."""
        return TrainConfig(
            preset=f"finetune-{self.mode}", optimizer=self.optimizer, lr=self.lr,
            weight_decay=self.weight_decay, batch_size=self.batch_size,
            iterations=self.iterations, variant_weights=dict(self.variant_weights),
            crop_size=self.crop_size, hflip=self.hflip, schedule=self.schedule, warmup=0,
            seed=self.seed, amp="off",
        )

    def to_dict(self) -> dict:
        """JSON-ready form (stored in the checkpoint's training record)."""
        d = asdict(self)
        d["mix_original"] = len(self.mix_original) if self.mix_original else 0
        return d


@dataclass
class FineTuneResult:
    """How a fine-tune ended.

    Attributes:
        checkpoint: The new checkpoint (None when cancelled).
        info: Its metadata (parent = the old model's id; None when cancelled).
        model: The fine-tuned copy, in eval mode (None when cancelled).
        cancelled: Whether the user cancelled (nothing was written then).
        iterations: Steps done.
        loss_history: ``(iteration, loss)`` per step.
        before: Scores per variant on the given images before fine-tuning.
        after: The same after fine-tuning (empty when cancelled).
        seconds: Wall time to the new checkpoint.
        held_before: Scores per variant of the old model on the held-out images.
        held_after: The same of the new model (both empty when not scored).
        held_images: How many held-out images were scored.
    """

    checkpoint: Path | None
    info: ModelInfo | None
    model: FCN | None
    cancelled: bool
    iterations: int
    loss_history: list[tuple[int, float]] = field(default_factory=list)
    before: dict[str, dict] = field(default_factory=dict)
    after: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0
    held_before: dict[str, dict] = field(default_factory=dict)
    held_after: dict[str, dict] = field(default_factory=dict)
    held_images: int = 0


@dataclass
class _Sample:
    image: torch.Tensor  # (1, 3, H, W) uint8 on the device
    target: torch.Tensor  # (1, H, W) int64: the training target (255 = ignored)
    truth: torch.Tensor  # (1, H, W) int64: the full mask, for the metrics
    feats: dict[str, torch.Tensor] | None = None
    flipped: dict[str, torch.Tensor] | None = None
    evaluate: bool = True


def _pick_grid(target: torch.Tensor, budget: int, gen: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Random rows and columns whose grid holds about ``budget`` pixels (None: use all).

    Each step trains on a different random grid, so every pixel is seen over the run while
    a step costs a fraction of a full-resolution one. Sparse targets (a few corrected
    strokes) are used whole.
    """
    h, w = target.shape[-2:]
    labelled = int((target != VOID).sum())
    if budget <= 0 or h * w <= budget or labelled <= budget:
        return None
    f = (h * w / budget) ** 0.5
    rows = torch.randperm(h, generator=gen)[: max(1, round(h / f))].sort().values
    cols = torch.randperm(w, generator=gen)[: max(1, round(w / f))].sort().values
    return rows.to(target.device), cols.to(target.device)


def _check_items(items: Sequence[Item], num_classes: int) -> None:
    if not items:
        raise FCNStudioError("Nothing to fine-tune on: no corrected image")
    for i, (rgb, mask, corrected) in enumerate(items):
        rgb, mask = np.asarray(rgb), np.asarray(mask)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise FCNStudioError(f"Image {i} is not H x W x 3 uint8: {rgb.shape} {rgb.dtype}")
        check_mask(mask, rgb.shape, num_classes, f"of image {i}")
        if corrected is not None and np.asarray(corrected).shape != mask.shape:
            raise FCNStudioError(f"Corrected pixels of image {i} do not match its mask size")


def _samples(items: Sequence[Item], mixed: Sequence[Item], corrected_only: bool,
             device: torch.device) -> list[_Sample]:
    out = []
    for k, (rgb, mask, corrected) in enumerate([*items, *mixed]):
        mask = np.asarray(mask, np.uint8)
        target = mask
        if corrected_only and corrected is not None:
            target = np.where(np.asarray(corrected, bool), mask, np.uint8(VOID))
        out.append(_Sample(
            image=torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].to(device),
            target=torch.from_numpy(target.astype(np.int64))[None].to(device),
            truth=torch.from_numpy(mask.astype(np.int64))[None].to(device),
            evaluate=k < len(items),
        ))
    if not any(bool((s.target != VOID).any()) for s in out):
        raise FCNStudioError("Nothing to fine-tune on: no labelled (corrected) pixel")
    return out


def _load_mixed(config: FineTuneConfig, n_items: int) -> list[Item]:
    pairs = list(config.mix_original or [])
    if not pairs:
        return []
    count = min(len(pairs), config.mix_count if config.mix_count is not None else n_items)
    rng = np.random.default_rng(config.seed)
    chosen = sorted(rng.choice(len(pairs), size=count, replace=False).tolist())
    return [(read_image(pairs[i][0]), read_mask(pairs[i][1]), None) for i in chosen]


def _scores(model: FCN, samples: Sequence[_Sample], info: ModelInfo,
            upsampling: Upsampling | None) -> dict[str, dict]:
    acc = VariantScores(info.class_names)
    model.eval()
    with torch.no_grad():  # not inference_mode: cached tensors are reused for training
        for s in samples:
            if not s.evaluate:
                continue
            if s.feats is not None:
                out = model.heads(s.feats, s.image.shape[-2:], VARIANTS, upsampling)
            else:
                out = model(info.preprocessing(s.image))
            acc.add(s.truth[0], {v: o[0] for v, o in out.items()})
    return acc.scores()


def _held_out_scores(model: FCN, info: ModelInfo, pairs: Sequence[tuple[Path, Path]],
                     device: torch.device, cancel: Callable[[], bool] | None
                     ) -> dict[str, dict]:
    from core.inference import Segmenter
    from core.training.evaluate import evaluate_segmenter

    seg = Segmenter(model, info, device=device, backend="torch")
    return evaluate_segmenter(seg, pairs, cancel=cancel)


def fine_tune(
    model: FCN,
    info: ModelInfo,
    items: Sequence[Item],
    config: FineTuneConfig,
    *,
    device: torch.device | str = "cpu",
    progress: Callable[[TrainProgress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    out_path: str | Path,
    held_out: Sequence[tuple[Path, Path]] = (),
    on_saved: Callable[[FineTuneResult], None] | None = None,
) -> FineTuneResult:
    """Fine-tune a copy of ``model`` on ``items`` and save it as a new checkpoint version.

    Args:
        model: The current model (left untouched).
        info: Its metadata; the new checkpoint's ``parent`` is ``info.id``.
        items: ``(rgb, mask, corrected)`` triples (see :data:`Item`).
        config: Mode, iterations, learning rate, loss restriction...
        device: Where to train.
        progress: Called after every step with a :class:`TrainProgress` (loss, ETA).
        cancel: Checked before every step (and between images while caching); when it
            returns True the run stops without writing anything.
        out_path: The new checkpoint file (written atomically).
        held_out: ``(image, mask)`` files not trained on, scored by the old and the new
            model once the new checkpoint is written (any size: tiled).
        on_saved: Called with the result as soon as the new checkpoint is written, before
            the held-out images are scored (a UI can load the new version meanwhile).

    Returns:
        A :class:`FineTuneResult` with before/after scores on ``items`` and, unless
        cancelled while scoring them, on ``held_out``.

    Raises:
        FCNStudioError: No image or no labelled pixel to train on, or a mask that does
            not fit its image or the model's classes.
    """
    t0 = time.perf_counter()
    device = torch.device(device)
    fast = config.mode == "fast"
    _check_items(items, info.num_classes)
    mixed = _load_mixed(config, len(items))
    if mixed:
        _check_items(mixed, info.num_classes)
    samples = _samples(items, mixed, config.corrected_only, device)
    weights = {v: float(w) for v, w in config.variant_weights.items() if w}
    variants = [v for v in VARIANTS if v in weights]
    result = FineTuneResult(None, None, None, True, 0)

    work = copy.deepcopy(model).to(device)
    work.eval()
    if fast:
        with torch.no_grad():  # (not inference_mode: the heads backpropagate into them)
            for s in samples:
                if cancel is not None and cancel():
                    result.seconds = time.perf_counter() - t0
                    return result
                x = info.preprocessing(s.image)
                s.feats = work.features(x)
                if config.hflip:
                    s.flipped = work.features(x.flip(-1))
    cropped = CroppedUpsampling.try_make(work) if fast else None
    result.before = _scores(work, samples, info, cropped)

    for p in work.trunk_parameters():
        p.requires_grad_(not fast)
    work.set_upsampling_trainable(final=work.config.learn_final_upsampling,
                                  skip=work.config.learn_skip_upsampling)
    tc = config.train_config
    optimizer = make_optimizer(work, tc)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: lr_factor(tc, i))
    transform = None
    if not fast and (config.crop_size is not None or config.hflip):
        from core.data.transforms import train_transform

        transform = train_transform(config.crop_size, scale=None, hflip=config.hflip)
    gen = torch.Generator().manual_seed(config.seed)
    order: list[int] = []
    work.train(not fast)  # fast: the heads have no dropout; keep the cached features' mode
    t_train = time.perf_counter()
    for it in range(config.iterations):
        if cancel is not None and cancel():
            log.info("fine-tuning cancelled at iteration %d", it)
            result.iterations = it
            result.seconds = time.perf_counter() - t0
            return result
        batch = []
        for _ in range(min(config.batch_size, len(samples))):
            if not order:
                order = torch.randperm(len(samples), generator=gen).tolist()
            batch.append(samples[order.pop()])
        total = torch.zeros((), device=device)
        parts_sum: dict[str, float] = {}
        for s in batch:
            target = s.target
            if fast:
                flip = config.hflip and bool(torch.rand((), generator=gen) < 0.5)
                feats = s.flipped if flip else s.feats
                if flip:
                    target = target.flip(-1)
                pick = _pick_grid(target, config.pixels_per_step, gen) if cropped else None
                up = cropped.picking(pick) if cropped is not None else None
                out = work.heads(feats, s.image.shape[-2:], variants, up)
                if pick is not None:
                    target = target[:, pick[0]][:, :, pick[1]]
            elif transform is not None:
                img, msk = transform(s.image[0].permute(1, 2, 0).cpu().numpy(),
                                     target[0].cpu().numpy().astype(np.uint8))
                out = work(info.preprocessing(img[None].to(device)), variants=variants)
                target = msk[None].to(device)
            else:
                out = work(info.preprocessing(s.image), variants=variants)
            loss, parts = multi_output_loss(out, target, weights)
            total = total + loss / len(batch)
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + v / len(batch)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        scheduler.step()
        done = it + 1
        result.loss_history.append((done, float(total.detach())))
        result.iterations = done
        if progress is not None:
            elapsed = time.perf_counter() - t_train
            progress(TrainProgress(done, config.iterations, result.loss_history[-1][1],
                                   parts_sum, optimizer.param_groups[0]["lr"], elapsed,
                                   elapsed / done * (config.iterations - done)))

    for p in work.parameters():
        p.requires_grad_(True)
    work.set_upsampling_trainable(final=work.config.learn_final_upsampling,
                                  skip=work.config.learn_skip_upsampling)
    result.after = _scores(work, samples, info, cropped)
    if cancel is not None and cancel():
        result.seconds = time.perf_counter() - t0
        return result

    n_eval = len(items)
    entries = [
        {"split": "corrections", "stage": stage, "images": n_eval, **scores}
        for stage, scores in (("before", result.before), ("after", result.after))
    ]
    new_info = replace(
        info,
        name=config.name or info.name,
        parent=info.id or None,
        id="",
        created="",
        training={
            **config.to_dict(),
            "kind": "fine-tune",
            "parent_id": info.id or None,
            "images": n_eval,
            "mixed_images": len(mixed),
            "iteration": result.iterations,
        },
        metrics=[*info.metrics, *entries],
    )
    work.eval()
    out_path = Path(out_path)
    saved = save_checkpoint(out_path, work, new_info)
    result.checkpoint, result.info, result.model = out_path, saved, work
    result.cancelled = False
    result.seconds = time.perf_counter() - t0
    if on_saved is not None:
        on_saved(result)
    if held_out:
        try:
            before = _held_out_scores(model, info, held_out, device, cancel)
            after = _held_out_scores(work, saved, held_out, device, cancel)
        except Cancelled:  # the new version stays, without these scores
            return result
        result.held_before, result.held_after = before, after
        result.held_images = len(held_out)
    return result
