"""Compute devices: pick one from a user preference, list them for a menu, describe them."""

from __future__ import annotations

import logging
import os
import shutil
import sys

import torch

from core.errors import FCNStudioError

log = logging.getLogger(__name__)
_warned = False

__all__ = ["available_devices", "describe", "gpu_hint", "pick_device"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _cuda_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _short_name(device: torch.device) -> str:
    """A menu name: the GPU's model, "Apple GPU (MPS)" or "CPU (N threads)"."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device.index or 0)
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads)"


def _unavailable(preference: str, why: str) -> FCNStudioError:
    ids = ", ".join(dev_id for dev_id, _ in available_devices())
    return FCNStudioError(f"Device {preference!r} is not available ({why}); available: {ids}")


def pick_device(preference: str | torch.device | None = "auto") -> torch.device:
    """Resolve a device preference to a ``torch.device``.

    Args:
        preference: "auto" (CUDA, then MPS, then CPU), "cpu", "cuda" (the current CUDA
            device), "cuda:N", "mps", or a ``torch.device``; None means "auto".

    Raises:
        FCNStudioError: The device is unknown or not available here (the message lists
            the devices that are).
    """
    if preference is None:
        preference = "auto"
    text = str(preference).strip().lower()
    if text == "auto":
        if _cuda_count():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        _warn_unused_gpu()
        return torch.device("cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError) as exc:
        raise FCNStudioError(
            f"Unknown device {str(preference)!r}; use auto, cpu, cuda, cuda:N or mps"
        ) from exc
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type == "cuda":
        count = _cuda_count()
        if count == 0:
            raise _unavailable(text, gpu_hint() or "no CUDA GPU found")
        index = torch.cuda.current_device() if device.index is None else device.index
        if index >= count:
            raise _unavailable(text, f"{count} CUDA GPU(s): cuda:0 .. cuda:{count - 1}")
        return torch.device("cuda", index)
    if device.type == "mps":
        if not _mps_available():
            raise _unavailable(text, "no Apple GPU (MPS) found")
        return torch.device("mps")
    raise FCNStudioError(
        f"Unsupported device {str(preference)!r}; use auto, cpu, cuda, cuda:N or mps"
    )


def available_devices() -> list[tuple[str, str]]:
    """The devices usable here as ``(id, name)`` pairs for a device menu, "auto" first.

    Example: ``[("auto", "Auto (NVIDIA H100 80GB HBM3)"), ("cuda:0", "NVIDIA H100 80GB
    HBM3"), ("cpu", "CPU (16 threads)")]``. Every id is accepted by :func:`pick_device`.
    """
    auto = pick_device("auto")
    auto_name = "CPU" if auto.type == "cpu" else _short_name(auto)
    devices = [("auto", f"Auto ({auto_name})")]
    count = _cuda_count()
    for i in range(count):
        name = torch.cuda.get_device_name(i)
        devices.append((f"cuda:{i}", f"{name} (cuda:{i})" if count > 1 else name))
    if _mps_available():
        devices.append(("mps", _short_name(torch.device("mps"))))
    devices.append(("cpu", _short_name(torch.device("cpu"))))
    return devices


def describe(device: str | torch.device) -> str:
    """A human-readable description, e.g. "NVIDIA H100 80GB HBM3 (cuda:0, 79.1 GiB)"."""
    device = torch.device(device)
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        props = torch.cuda.get_device_properties(index)
        return f"{props.name} (cuda:{index}, {props.total_memory / 2**30:.1f} GiB)"
    if device.type in ("mps", "cpu"):
        return _short_name(device)
    return str(device)


def _nvidia_gpu_present() -> bool:
    """Whether this process seems to be given an NVIDIA GPU, without CUDA's help.

    Linux: the device node (a container started without GPUs has none, although the host
    kernel's /proc/driver/nvidia shows through); elsewhere: ``nvidia-smi`` on the PATH.
    """
    if sys.platform.startswith("linux"):
        return os.path.exists("/dev/nvidia0")
    return shutil.which("nvidia-smi") is not None


def gpu_hint() -> str | None:
    """Why an NVIDIA GPU that seems to be here is not used (None: no such GPU, or CUDA works).

    The most common GPU setup problem: a CPU-only PyTorch wheel next to a working GPU, which
    then silently runs everything on the CPU.
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return None  # GPUs hidden on purpose
    if _cuda_count() > 0 or not _nvidia_gpu_present():
        return None
    if torch.version.cuda is None:
        return (f"An NVIDIA GPU seems present, but this PyTorch ({torch.__version__}) is a "
                "CPU-only build: everything runs on the CPU. Install a CUDA build of PyTorch "
                "(see https://pytorch.org/get-started/locally/) to use the GPU.")
    return (f"An NVIDIA GPU seems present, but PyTorch (CUDA {torch.version.cuda}) cannot use "
            "it: the driver may be too old for this CUDA version, or not loaded (check "
            "nvidia-smi). Everything runs on the CPU.")


def _warn_unused_gpu() -> None:
    """Log :func:`gpu_hint` once per process when "auto" falls back to the CPU."""
    global _warned
    if _warned:
        return
    _warned = True
    hint = gpu_hint()
    if hint:
        log.warning("%s", hint)
