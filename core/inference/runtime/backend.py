"""The backend interface, the eager reference, and what every backend shares.

A backend runs an FCN on a normalized float batch and returns its three score maps; the
fast ones (:mod:`~core.inference.runtime.torch_backend`, :mod:`~core.inference.runtime.onnx`)
compute what :class:`EagerBackend` computes, faster. :func:`agreement` measures how far.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from core.inference.runtime import heap
from core.inference.runtime.options import LRUCache
from core.variants import VARIANTS

__all__ = [
    "Backend",
    "EagerBackend",
    "Scores",
    "WeightsWatch",
    "agreement",
    "error_line",
    "same_device",
]

log = logging.getLogger(__name__)

Scores = dict[str, torch.Tensor]


def same_device(a: torch.device, b: torch.device) -> bool:
    """Whether two devices are the same ("cuda" and "cuda:0" are, when 0 is current)."""
    if a.type != b.type:
        return False
    if a.type != "cuda" or a.index == b.index:
        return True
    current = torch.cuda.current_device() if torch.cuda.is_available() else 0
    return (a.index if a.index is not None else current) == (
        b.index if b.index is not None else current)


class WeightsWatch:
    """Notices when a model's weights change (replaced, moved, or modified in place)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.signature = self._now()

    def _now(self) -> tuple:
        return tuple(
            (id(t), t.data_ptr(), t._version, t.dtype, t.device)
            for t in [*self.model.parameters(), *self.model.buffers()]
        )

    def changed(self) -> bool:
        """True (once) when the weights changed since the last call or construction."""
        now = self._now()
        if now != self.signature:
            self.signature = now
            return True
        return False


class Backend:
    """Runs an FCN: ``backend(x, variants)`` returns ``{variant: scores}``.

    Every backend maps a normalized float ``(N, 3, H, W)`` batch on :attr:`device` to
    ``{variant: (N, C, H, W) scores}`` (any float dtype; the caller upcasts). Subclasses set
    :attr:`kind` and implement ``__call__``; wrappers (:mod:`core.inference.runtime.wrappers`)
    override the read-only :attr:`name`, :attr:`notes` and :attr:`description` to follow the
    backend they route calls to.

    Attributes:
        kind: The name of this kind of backend.
        model: The FCN it runs.
        device: Where its inputs must be.
    """

    kind = "backend"

    def __init__(self, model: nn.Module, device: torch.device | str,
                 notes: Sequence[str] = ()) -> None:
        self.model = model
        self.device = torch.device(device)
        self._notes: list[str] = list(notes)

    @property
    def name(self) -> str:
        """The backend's name ("eager", "torch", "onnxruntime"...)."""
        return self.kind

    @property
    def notes(self) -> list[str]:
        """Why requested features were left out (fallback reasons), for logs and UIs."""
        return list(self._notes)

    @property
    def description(self) -> str:
        """A one-line summary, e.g. "torch (channels_last, bfloat16, CUDA graphs)"."""
        return self.name

    def accepts(self, x: torch.Tensor) -> bool:
        """Whether ``x`` can run here (right device, model in eval mode)."""
        return same_device(x.device, self.device) and not self.model.training

    def __call__(self, x: torch.Tensor, variants: Iterable[str] = VARIANTS) -> Scores:
        raise NotImplementedError

    def release(self) -> None:
        """Drop caches (compiled graphs, sessions, records); they are rebuilt on demand."""

    def caches(self) -> dict[str, LRUCache]:
        """The per-shape caches this backend holds, by name (for diagnostics)."""
        return {}

    def note(self, message: str) -> None:
        """Record and log why a feature was left out."""
        self._notes.append(message)
        log.info("%s backend: %s", self.name, message)


class EagerBackend(Backend):
    """The model as it is: the reference every other backend is measured against."""

    kind = "eager"

    def __call__(self, x: torch.Tensor, variants: Iterable[str] = VARIANTS) -> Scores:
        with torch.inference_mode():
            out = self.model(x, variants=tuple(variants))
        heap.TRIMMER.after_call()
        return out

    def accepts(self, x: torch.Tensor) -> bool:
        return True


def error_line(exc: BaseException) -> str:
    """``"Type: message"`` on one line (two when the first ends with ":", as torch.compile's
    "backend='inductor' raised:" does), for notes and logs."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = " ".join(lines[:2]) if lines and lines[0].endswith(":") else "".join(lines[:1])
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def agreement(a: Scores, b: Scores) -> dict[str, float]:
    """Per variant, the fraction of pixels whose argmax class is the same in ``a`` and ``b``."""
    return {
        v: float((a[v].float().argmax(1) == b[v].float().to(a[v].device).argmax(1))
                 .float().mean())
        for v in a if v in b
    }
