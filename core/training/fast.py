"""The training step's fast path: border reuse, channels_last, bf16 autocast, torch.compile,
pinned memory and asynchronous copies.

:func:`train_step` is the step the trainer runs and the benchmark times. What it does is set
by :class:`FastOptions`: defaults per device (CPU: channels_last and border reuse; CUDA:
channels_last and pinned, asynchronous host-to-device copies; the config's ``amp`` gives
bf16 autocast on CUDA), overridden by the
``FCN_STUDIO_TRAIN_FAST`` environment variable (e.g. ``compile=1`` or ``cl=0``).
Whatever cannot be used falls back to the plain step, and the reason is logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace

import torch
from torch import nn

from core.inference.memory import is_oom
from core.inference.runtime.backend import error_line
from core.inference.runtime.border import BorderReuse, NotApplicable
from core.inference.runtime.cuda import bf16_supported
from core.inference.runtime.options import parse_bool
from core.models.fcn import VARIANTS
from core.training.losses import multi_output_loss_tensors, parts_to_floats

__all__ = [
    "ENV_VAR",
    "Compiled",
    "FastOptions",
    "ReuseFCN",
    "autocast",
    "compile_model",
    "prepare",
    "train_step",
]

log = logging.getLogger(__name__)

ENV_VAR = "FCN_STUDIO_TRAIN_FAST"
"""``KEY=VALUE,...`` overrides of :class:`FastOptions` for training runs."""


@dataclass(frozen=True)
class FastOptions:
    """How the training step runs.

    Attributes:
        channels_last: NHWC weights and activations.
        border_reuse: Skip the padded border's image-independent work (exact, gradients
            too; :mod:`core.inference.runtime.border`); not combined with ``compile``.
        compile: ``torch.compile`` the model (the first steps compile; later ones are faster).
        compile_mode: Its mode ("default", "max-autotune-no-cudagraphs"...).
        compile_backend: Its backend ("inductor"; "eager"/"aot_eager" for tests).
        pin_memory: Pinned host batches, copied asynchronously (CUDA only).
    """

    channels_last: bool = False
    border_reuse: bool = False
    compile: bool = False
    compile_mode: str = "default"
    compile_backend: str = "inductor"
    pin_memory: bool = False

    @classmethod
    def for_device(cls, device: torch.device | str, env: Mapping[str, str] | None = None
                   ) -> FastOptions:
        """The defaults for ``device``, with ``FCN_STUDIO_TRAIN_FAST`` applied.

        A malformed variable is logged and ignored.
        """
        cuda = torch.device(device).type == "cuda"
        # CPU: measured 1.86x per step (compact model, 6 x 224 x 224, docs/benchmarks.md);
        # CUDA: border reuse is left to FCN_STUDIO_TRAIN_FAST=reuse=1 until measured there.
        opts = cls(channels_last=True, border_reuse=not cuda, pin_memory=cuda)
        text = (os.environ if env is None else env).get(ENV_VAR, "").strip()
        if not text:
            return opts
        try:
            return opts.with_options(dict(item.split("=", 1) for item in text.split(",") if item))
        except ValueError as exc:
            log.warning("ignoring %s=%r: %s", ENV_VAR, text, exc)
            return opts

    def with_options(self, options: Mapping[str, str]) -> FastOptions:
        """A copy with ``KEY=VALUE`` strings applied.

        Raises:
            ValueError: Unknown keys or bad values.
        """
        known = {f.name for f in fields(self)}
        aliases = {"cl": "channels_last", "pin": "pin_memory", "mode": "compile_mode",
                   "reuse": "border_reuse"}
        changes: dict[str, object] = {}
        for key, value in options.items():
            key = aliases.get(key.strip().lower(), key.strip().lower())
            if key not in known:
                raise ValueError(f"unknown option {key!r}; known: {', '.join(sorted(known))}")
            default = getattr(self, key)
            changes[key] = parse_bool(value, key) if isinstance(default, bool) else value.strip()
        return replace(self, **changes)


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA for ``amp`` "auto" or "bf16", on the CPU for "bf16" only."""
    if device.type == "cuda" and amp in ("auto", "bf16"):
        if not bf16_supported(device):
            log.info("bf16 not supported on this GPU: training in fp32")
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if amp == "bf16" and device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class ReuseFCN(nn.Module):
    """An FCN whose trunk skips the padded border's image-independent work.

    Same parameters (``self.model``), same outputs and gradients as ``model`` (to rounding);
    the rings come from a small proxy pass every step, since they depend on the weights.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.border = BorderReuse(model)

    def forward(self, x: torch.Tensor, variants: Iterable[str] = VARIANTS
                ) -> dict[str, torch.Tensor]:
        return self.model.heads(self.border.features(x), x.shape[-2:], variants)


def prepare(model: nn.Module, options: FastOptions) -> nn.Module:
    """Convert the weights to channels_last in place when asked; return the module to train
    (the model, or a :class:`ReuseFCN` around it)."""
    if options.channels_last:
        model.to(memory_format=torch.channels_last)
    if not options.border_reuse:
        return model
    if options.compile:
        log.info("border reuse is not combined with torch.compile: training the plain model")
        return model
    try:
        return ReuseFCN(model)
    except NotApplicable as exc:
        log.info("border reuse not applicable (%s): training the plain model", exc)
        return model


class Compiled:
    """``torch.compile(net)`` that falls back to ``net`` if compiling fails.

    Compilation happens on the first call (and the backward graph on the first backward),
    so a missing toolchain or an unsupported op shows up inside a step, not at
    ``torch.compile``. :func:`train_step` then switches to the plain module for good, logs
    why, and redoes the step; :attr:`reason` keeps the message.
    """

    def __init__(self, net: nn.Module, compiled: Callable[..., dict],
                 fallback: nn.Module | None = None) -> None:
        self.plain = fallback if fallback is not None else net
        self.compiled: Callable[..., dict] | None = compiled
        self.reason: str | None = None

    def __call__(self, *args, **kwargs) -> dict:
        net = self.compiled if self.compiled is not None else self.plain
        return net(*args, **kwargs)

    def give_up(self, exc: BaseException) -> None:
        """Use the plain module from now on (``exc``: why compiling failed)."""
        self.reason = f"torch.compile failed ({error_line(exc)})"
        self.compiled = None
        log.warning("%s: training uncompiled", self.reason)


def compile_model(net: nn.Module, options: FastOptions, fallback: nn.Module | None = None
                  ) -> Callable[..., dict]:
    """``net`` wrapped in :class:`Compiled` when ``options.compile``, else ``net``.

    ``fallback``: what runs if compiling fails (default ``net``; e.g. the model with border
    reuse, which compiling leaves out)."""
    if not options.compile:
        return net
    try:
        mode = None if options.compile_mode == "default" else options.compile_mode
        return Compiled(net, torch.compile(net, mode=mode, backend=options.compile_backend),
                        fallback)
    except Exception as exc:  # e.g. an unknown backend name, an unsupported platform
        log.warning("torch.compile failed (%s): training uncompiled", exc)
        return fallback if fallback is not None else net


def train_step(
    net: Callable[..., dict],
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    masks: torch.Tensor,
    weights: Mapping[str, float],
    preprocessing: Callable[[torch.Tensor], torch.Tensor],
    *,
    device: torch.device,
    amp: str = "auto",
    reduction: str = "mean",
    options: FastOptions | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """One optimizer step on a batch (uint8 ``(N, 3, H, W)`` images, int64 masks).

    Returns the loss (a tensor on ``device``; reading it synchronizes) and its parts.
    """
    options = options or FastOptions()
    images = images.to(device, non_blocking=True)
    masks = masks.to(device, non_blocking=True)
    x = preprocessing(images)
    if options.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    try:
        return _step(net, optimizer, x, masks, weights, device, amp, reduction)
    except Exception as exc:
        if not isinstance(net, Compiled) or net.compiled is None or is_oom(exc):
            raise
        # The parameters are untouched (the step failed before step()): redo it uncompiled.
        # If that fails too, the batch or the model is at fault, not compiling.
        out = _step(net.plain, optimizer, x, masks, weights, device, amp, reduction)
        net.give_up(exc)
        return out


def _step(net: Callable[..., dict], optimizer: torch.optim.Optimizer, x: torch.Tensor,
          masks: torch.Tensor, weights: Mapping[str, float], device: torch.device, amp: str,
          reduction: str) -> tuple[torch.Tensor, dict[str, float]]:
    optimizer.zero_grad(set_to_none=True)
    with autocast(device, amp):
        outputs = net(x, variants=tuple(weights))
    loss, parts = multi_output_loss_tensors(outputs, masks, dict(weights), reduction=reduction)
    loss.backward()
    optimizer.step()
    return loss, parts_to_floats(parts)  # read after the step: no wait before backward
