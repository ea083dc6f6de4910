"""Joint image/mask augmentation with ``torchvision.transforms.v2``.

Images are wrapped as :class:`tv_tensors.Image` and masks as :class:`tv_tensors.Mask`, so
every geometric step moves both identically; v2 resizes masks with nearest-neighbor
interpolation whatever mode is asked (``resize_mask`` coerces it) and we ask for
``NEAREST_EXACT`` explicitly anyway. Padding fills images with 0 and masks with 255 (void),
so padded pixels are ignored by the loss. Color jitter only touches the image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

from core.data.palette import VOID
from core.errors import MaskError

__all__ = ["JointTransform", "RandomScale", "eval_transform", "train_transform"]

Step = Callable[[tv_tensors.Image, tv_tensors.Mask], tuple[tv_tensors.Image, tv_tensors.Mask]]


class RandomScale:
    """Resize image and mask by one random factor drawn uniformly from ``scale``.

    Uses the torch RNG (so DataLoader worker seeding applies). The image is resized
    bilinearly with antialiasing, the mask with nearest-exact interpolation.
    """

    def __init__(self, scale: tuple[float, float]) -> None:
        """Keep the factor range.

        Raises:
            ValueError: The range is empty or not positive.
        """
        lo, hi = float(scale[0]), float(scale[1])
        if not 0 < lo <= hi:
            raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {scale}")
        self.scale = (lo, hi)

    def __call__(
        self, image: tv_tensors.Image, mask: tv_tensors.Mask
    ) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
        """Resize both by the same random factor."""
        lo, hi = self.scale
        s = lo + (hi - lo) * float(torch.rand(()))
        h, w = image.shape[-2:]
        size = [max(1, round(h * s)), max(1, round(w * s))]
        if size == [h, w]:
            return image, mask
        image = F.resize(image, size, interpolation=InterpolationMode.BILINEAR, antialias=True)
        mask = F.resize(mask, size, interpolation=InterpolationMode.NEAREST_EXACT)
        return image, mask

    def __repr__(self) -> str:
        return f"RandomScale(scale={self.scale})"


class JointTransform:
    """Apply steps to an (image, mask) pair given as numpy arrays.

    Called with an ``H x W x 3`` uint8 RGB image and an ``H x W`` uint8 mask, it returns a
    uint8 image tensor ``3 x H' x W'`` and an int64 mask tensor ``H' x W'`` (plain tensors).
    """

    def __init__(self, steps: Sequence[Step] = ()) -> None:
        """Keep the steps; each takes and returns ``(Image, Mask)`` (v2 transforms do)."""
        self.steps = list(steps)

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Transform one pair.

        Raises:
            ValueError: The image is not ``H x W x 3`` uint8 or the mask not 2-D.
            MaskError: The mask's size differs from the image's.
        """
        image = np.asarray(image)
        mask = np.asarray(mask)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"Expected an H x W x 3 uint8 image, got {image.shape} {image.dtype}")
        if mask.ndim != 2:
            raise ValueError(f"Expected an H x W mask, got shape {mask.shape}")
        if mask.shape != image.shape[:2]:
            raise MaskError(
                f"Mask is {mask.shape[1]}x{mask.shape[0]} pixels but the image is "
                f"{image.shape[1]}x{image.shape[0]}"
            )
        img_t = tv_tensors.Image(torch.from_numpy(_writable(image)).permute(2, 0, 1))
        mask_t = tv_tensors.Mask(torch.from_numpy(_writable(mask)))
        for step in self.steps:
            img_t, mask_t = step(img_t, mask_t)
        out_img = img_t.as_subclass(torch.Tensor).contiguous()
        out_mask = mask_t.as_subclass(torch.Tensor).to(torch.int64).contiguous()
        return out_img, out_mask

    def __repr__(self) -> str:
        inner = ", ".join(repr(s) for s in self.steps)
        return f"JointTransform([{inner}])"


def _writable(a: np.ndarray) -> np.ndarray:
    """A C-contiguous, writable array (torch.from_numpy warns on read-only arrays)."""
    a = np.ascontiguousarray(a)
    return a if a.flags.writeable else a.copy()


def train_transform(
    crop_size: int | None,
    scale: tuple[float, float] | None = (0.5, 2.0),
    hflip: bool = True,
    color_jitter: float = 0.0,
) -> JointTransform:
    """Training augmentation: random scale, random crop (padded), flip, color jitter.

    Args:
        crop_size: Side of the square random crop; smaller inputs are padded (image 0,
            mask 255). None keeps the whole (scaled) image.
        scale: Range of the random resize factor; None or ``(1, 1)`` disables it.
        hflip: Flip horizontally with probability 0.5.
        color_jitter: Strength of brightness/contrast/saturation jitter (0 disables it).

    Returns:
        A :class:`JointTransform`.
    """
    steps: list[Step] = []
    if scale is not None and tuple(scale) != (1.0, 1.0):
        steps.append(RandomScale(scale))
    if crop_size is not None:
        if crop_size <= 0:
            raise ValueError(f"crop_size must be positive, got {crop_size}")
        steps.append(
            v2.RandomCrop(
                crop_size,
                pad_if_needed=True,
                fill={tv_tensors.Image: 0, tv_tensors.Mask: VOID},
                padding_mode="constant",
            )
        )
    if hflip:
        steps.append(v2.RandomHorizontalFlip(p=0.5))
    if color_jitter > 0:
        steps.append(
            v2.ColorJitter(brightness=color_jitter, contrast=color_jitter, saturation=color_jitter)
        )
    return JointTransform(steps)


def eval_transform() -> JointTransform:
    """Evaluation: only the conversion to tensors."""
    return JointTransform()
