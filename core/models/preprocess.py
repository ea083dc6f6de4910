"""Input preprocessing recorded with every checkpoint (weights only work with their own)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class Preprocessing:
    """Maps an RGB uint8 image to the network's input: ``(x[order] / divisor - mean) / std``.

    Attributes:
        channel_order: "RGB" or "BGR" (Caffe weights expect BGR).
        divisor: 255.0 for inputs in [0, 1] (torchvision), 1.0 for 0-255 inputs (Caffe).
        mean: per-channel mean, in ``channel_order``, after division.
        std: per-channel standard deviation, in ``channel_order``, after division.
    """

    channel_order: str = "RGB"
    divisor: float = 255.0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def __post_init__(self) -> None:
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be RGB or BGR, not {self.channel_order!r}")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Normalize a ``(N, 3, H, W)`` or ``(3, H, W)`` RGB tensor (uint8 or float, 0-255)."""
        x = images.float()
        if self.channel_order == "BGR":
            x = x.flip(-3)
        mean, std = _constants(self.mean, self.std, x.dtype, x.device)
        return (x / self.divisor - mean) / std

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        """Inverse of :meth:`to_dict`."""
        return cls(
            channel_order=str(d["channel_order"]),
            divisor=float(d["divisor"]),
            mean=tuple(float(v) for v in d["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in d["std"]),  # type: ignore[arg-type]
        )


_CONSTANTS: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _constants(mean: tuple[float, ...], std: tuple[float, ...], dtype: torch.dtype,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean`` and ``std`` as ``(3, 1, 1)`` tensors on ``device``, made once: building them
    from Python numbers on every call is a synchronizing host-to-device copy on a GPU."""
    key = (mean, std, dtype, str(device))
    cached = _CONSTANTS.get(key)
    if cached is None:
        with torch.inference_mode(False):  # usable by inference and training calls alike
            cached = (torch.tensor(mean, dtype=dtype).view(3, 1, 1).to(device),
                      torch.tensor(std, dtype=dtype).view(3, 1, 1).to(device))
        if len(_CONSTANTS) > 64:
            _CONSTANTS.clear()
        _CONSTANTS[key] = cached
    return cached


IMAGENET = Preprocessing()
"""torchvision's ImageNet preprocessing (RGB, 0-1, mean/std normalized)."""

CAFFE = Preprocessing("BGR", 1.0, (104.00699, 116.66877, 122.67892), (1.0, 1.0, 1.0))
"""The reference Caffe FCN models' preprocessing (BGR, 0-255, mean subtracted)."""
