"""The training loop: deep supervision or staged, progress, cancellation, atomic checkpoints,
resume, and DistributedDataParallel under torchrun."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

from core.checkpoints.checkpoint import ModelInfo, save_checkpoint
from core.models.fcn import FCN
from core.training.config import TrainConfig
from core.training.evaluate import evaluate
from core.training.fast import FastOptions, compile_model, prepare, train_step
from core.training.state import resume_training, save_train_state

log = logging.getLogger(__name__)

MODEL_FILE = "model.safetensors"
STATE_FILE = "train_state.safetensors"


@dataclass
class TrainProgress:
    """One iteration's report to the caller (the CLI's progress bar, the app's loss curve)."""

    iteration: int
    total: int
    loss: float
    losses: dict[str, float]
    lr: float
    elapsed: float
    eta_seconds: float


@dataclass
class TrainResult:
    """How a run ended: the checkpoint it wrote last, and whether it was cancelled."""

    checkpoint: Path | None
    info: ModelInfo | None
    iteration: int
    cancelled: bool
    loss_history: list[tuple[int, float]] = field(default_factory=list)


def enter_stage(model: FCN, stage: str) -> None:
    """The paper's staged training: entering 16s (8s) zeroes score_pool4 (score_pool3)."""
    layer = {"16s": model.score_pool4, "8s": model.score_pool3}.get(stage)
    if layer is not None:
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)


def param_groups(model: FCN, config: TrainConfig) -> list[dict]:
    """Weights with weight decay; biases at ``bias_lr_mult`` x lr without decay."""
    weights, biases = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (biases if name.endswith(".bias") else weights).append(p)
    return [
        {"params": weights, "lr": config.lr, "weight_decay": config.weight_decay},
        {"params": biases, "lr": config.lr * config.bias_lr_mult, "weight_decay": 0.0},
    ]


def make_optimizer(model: FCN, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum) or Adam/AdamW as the config says."""
    groups = param_groups(model, config)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    cls = torch.optim.AdamW if config.weight_decay > 0 else torch.optim.Adam
    return cls(groups, lr=config.lr, betas=(config.momentum, 0.999))


def lr_factor(config: TrainConfig, iteration: int) -> float:
    """Multiplier of the base learning rate at ``iteration`` (warm-up, then the schedule)."""
    if config.warmup and iteration < config.warmup:
        return (iteration + 1) / config.warmup
    t = min(iteration / max(config.iterations, 1), 1.0)
    if config.schedule == "poly":
        return (1 - t) ** 0.9
    if config.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * t))
    return 1.0


def _collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor]]):
    images = torch.stack([b[0] for b in batch])
    masks = torch.stack([b[1] for b in batch])
    return images, masks


def _batches(dataset: Dataset, config: TrainConfig, rank: int, world: int,
             start_iteration: int, pin_memory: bool = False
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless shuffled batches; epoch e uses seed (seed, e); each rank takes its share."""
    n = len(dataset)  # type: ignore[arg-type]
    per_epoch = max(1, n // (config.batch_size * world))
    epoch, skip = divmod(start_iteration, per_epoch)
    while True:
        g = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        order = torch.randperm(n, generator=g).tolist()[rank::world]
        order = order[skip * config.batch_size :]
        skip = 0
        loader = DataLoader(
            torch.utils.data.Subset(dataset, order), batch_size=config.batch_size,
            shuffle=False, drop_last=len(order) >= config.batch_size,
            num_workers=config.workers, collate_fn=_collate, pin_memory=pin_memory,
        )
        yield from loader
        epoch += 1


def _distributed() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def train(
    model: FCN,
    info: ModelInfo,
    dataset: Dataset,
    config: TrainConfig,
    out_dir: str | Path,
    *,
    device: torch.device | str = "cpu",
    val_pairs: Sequence[tuple[Path, Path]] = (),
    resume: bool = False,
    progress: Callable[[TrainProgress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    fast: FastOptions | None = None,
) -> TrainResult:
    """Train ``model`` on ``dataset`` (items: uint8 image tensor, int64 mask tensor).

    Writes ``out_dir/model.safetensors`` (weights and metadata) and
    ``out_dir/train_state.safetensors`` every ``checkpoint_every`` iterations and at the
    end, each atomically. ``cancel()`` is checked every iteration: a cancelled run returns
    without writing, so the last saved checkpoint stays intact. ``resume=True`` continues
    from the state in ``out_dir``. ``fast`` sets the step's fast path (None: the device's
    defaults and ``FCN_STUDIO_TRAIN_FAST``, see :mod:`core.training.fast`).
    """
    out_dir = Path(out_dir)
    device = torch.device(device)
    rank, world = _distributed()
    model.set_upsampling_trainable(
        final=config.learn_final_upsampling, skip=config.learn_skip_upsampling
    )
    model.to(device).train()
    fast = fast or FastOptions.for_device(device)
    module = prepare(model, fast)
    optimizer = make_optimizer(model, config)
    start = 0
    if resume:
        start, info = _resume(model, optimizer, out_dir, device)
    info = replace(info, training={**config.to_dict(), "parent_id": info.parent,
                                   "world_size": world})
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: lr_factor(config, i), last_epoch=start - 1
    )
    if start == 0:  # LambdaLR applies the factor of iteration 0 only from its first step
        for group, base in zip(optimizer.param_groups, scheduler.base_lrs, strict=True):
            group["lr"] = base * lr_factor(config, 0)
    net: torch.nn.Module = module
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            module, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=len(config.loss_weights) < 3,
        )
    fallback = None  # if compiling fails: the uncompiled fast path, border reuse included
    if fast.compile and fast.border_reuse and world == 1:
        fallback = prepare(model, replace(fast, compile=False))
    net = compile_model(net, fast, fallback)
    weights = config.loss_weights
    batches = _batches(dataset, config, rank, world, start,
                       pin_memory=fast.pin_memory and device.type == "cuda")
    history: list[tuple[int, float]] = []
    saved: Path | None = None
    t0 = time.perf_counter()
    it = start
    for it in range(start, config.iterations):
        if cancel is not None and cancel():
            log.info("training cancelled at iteration %d", it)
            return TrainResult(saved, None, it, True, history)
        images, masks = next(batches)
        loss, parts = train_step(net, optimizer, images, masks, weights, info.preprocessing,
                                 device=device, amp=config.amp, reduction=config.reduction,
                                 options=fast)
        scheduler.step()
        history.append((it + 1, float(loss.detach())))
        done = it + 1
        if progress is not None and rank == 0:
            elapsed = time.perf_counter() - t0
            rate = elapsed / (done - start)
            progress(TrainProgress(done, config.iterations, history[-1][1], parts,
                                   optimizer.param_groups[0]["lr"], elapsed,
                                   rate * (config.iterations - done)))
        last = done == config.iterations
        if config.val_every and (done % config.val_every == 0 or last) and val_pairs:
            info = _validate(model, info, val_pairs, device, done, rank)
        elif last and val_pairs:
            info = _validate(model, info, val_pairs, device, done, rank)
        if last or (config.checkpoint_every and done % config.checkpoint_every == 0):
            saved, info = _save(model, optimizer, info, out_dir, done, rank, world)
    return TrainResult(saved, info, config.iterations if start < config.iterations else it,
                       False, history)


def _validate(model: FCN, info: ModelInfo, val_pairs, device, iteration: int, rank: int
              ) -> ModelInfo:
    if rank != 0:
        return info
    scores = evaluate(model, val_pairs, info.preprocessing, info.class_names, device=device)
    model.train()
    entry = {"iteration": iteration, "split": "val", "images": len(val_pairs), **scores}
    log.info("iteration %d: mean IU %s", iteration,
             {v: round(s["mean_iu"], 4) for v, s in scores.items()})
    return replace(info, metrics=[*info.metrics, entry])


def _save(model: FCN, optimizer, info: ModelInfo, out_dir: Path, iteration: int, rank: int,
          world: int) -> tuple[Path, ModelInfo]:
    path = out_dir / MODEL_FILE
    if rank == 0:
        info = replace(info, training={**info.training, "iteration": iteration})
        # The state (weights included) first: a kill before the checkpoint resumes from it.
        info = save_train_state(out_dir / STATE_FILE, optimizer, iteration, model=model, info=info)
        save_checkpoint(path, model, info)
    if world > 1:
        dist.barrier()
    return path, info


def _resume(model: FCN, optimizer, out_dir: Path, device) -> tuple[int, ModelInfo]:
    return resume_training(out_dir / STATE_FILE, out_dir / MODEL_FILE, model, optimizer, device)
