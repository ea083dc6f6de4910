"""Out-of-memory errors: recognising them and returning a failed attempt's memory."""

from __future__ import annotations

import gc

import torch

__all__ = ["device_label", "free_cache", "is_oom"]


def is_oom(exc: BaseException) -> bool:
    """Whether ``exc`` is an out-of-memory error (CUDA, MPS or the CPU allocator)."""
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def free_cache(device: torch.device) -> None:
    """Return a failed attempt's cached memory to the device."""
    if device.type in ("cuda", "mps"):
        gc.collect()  # tensors kept alive by reference cycles of the failed attempt
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def device_label(device: torch.device) -> str:
    """``CUDA``, ``MPS`` or ``CPU``, for messages."""
    return {"cuda": "CUDA", "mps": "MPS"}.get(device.type, "CPU")
