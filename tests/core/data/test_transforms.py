"""Joint augmentation: masks move with images, pad with void, never interpolate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.data.transforms import RandomScale, eval_transform, train_transform
from core.errors import MaskError


def _column_coded(h: int = 6, w: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Image whose red channel is 10 * column and mask whose label is the column."""
    cols = np.arange(w, dtype=np.uint8)
    image = np.zeros((h, w, 3), np.uint8)
    image[:, :, 0] = cols * 10
    image[:, :, 1] = 7
    mask = np.broadcast_to(cols, (h, w)).copy()
    return image, mask


def test_eval_transform_converts_only() -> None:
    image, mask = _column_coded()
    img_t, mask_t = eval_transform()(image, mask)
    assert type(img_t) is torch.Tensor and type(mask_t) is torch.Tensor
    assert img_t.dtype == torch.uint8 and img_t.shape == (3, 6, 20)
    assert mask_t.dtype == torch.int64 and mask_t.shape == (6, 20)
    assert torch.equal(img_t.permute(1, 2, 0), torch.from_numpy(image))
    assert torch.equal(mask_t, torch.from_numpy(mask).long())


def test_crop_pads_mask_with_void_and_image_with_zero() -> None:
    torch.manual_seed(0)
    image = np.full((10, 12, 3), 200, np.uint8)
    mask = np.full((10, 12), 3, np.uint8)
    t = train_transform(32, scale=None, hflip=False)
    for _ in range(5):
        img_t, mask_t = t(image, mask)
        assert img_t.shape == (3, 32, 32) and mask_t.shape == (32, 32)
        assert set(mask_t.unique().tolist()) == {3, 255}
        assert int((mask_t == 3).sum()) == 10 * 12  # the whole image is kept
        inside = mask_t == 3
        assert bool((img_t[:, inside] == 200).all())
        assert bool((img_t[:, ~inside] == 0).all())


def test_crop_of_larger_image_keeps_alignment() -> None:
    torch.manual_seed(1)
    image, mask = _column_coded(h=30, w=25)
    t = train_transform(16, scale=None, hflip=False)
    for _ in range(5):
        img_t, mask_t = t(image, mask)
        assert img_t.shape == (3, 16, 16)
        assert torch.equal(img_t[0].long(), mask_t * 10)


def test_flip_moves_mask_with_image() -> None:
    image, mask = _column_coded()
    t = train_transform(None, scale=None, hflip=True)
    flipped = unflipped = 0
    torch.manual_seed(2)
    for _ in range(20):
        img_t, mask_t = t(image, mask)
        assert torch.equal(img_t[0].long(), mask_t * 10)  # still paired pixel by pixel
        assert bool((img_t[1] == 7).all())
        if mask_t[0, 0] == 19:
            flipped += 1
        else:
            assert mask_t[0, 0] == 0
            unflipped += 1
    assert flipped and unflipped


def test_scale_and_jitter_never_invent_labels() -> None:
    rng = np.random.default_rng(0)
    mask = rng.choice(np.array([0, 3, 7], np.uint8), size=(23, 31))
    image = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    t = train_transform(40, scale=(0.5, 2.0), hflip=True, color_jitter=0.4)
    torch.manual_seed(3)
    for _ in range(10):
        img_t, mask_t = t(image, mask)
        assert img_t.dtype == torch.uint8 and img_t.shape == (3, 40, 40)
        assert set(mask_t.unique().tolist()) <= {0, 3, 7, 255}


def test_random_scale_resizes_both_alike() -> None:
    torch.manual_seed(4)
    image, mask = _column_coded(h=8, w=20)
    t = train_transform(None, scale=(2.0, 2.0), hflip=False)
    img_t, mask_t = t(image, mask)
    assert img_t.shape == (3, 16, 40) and mask_t.shape == (16, 40)
    # nearest-exact doubling: every label column is repeated twice
    assert mask_t[0].tolist() == [c for c in range(20) for _ in range(2)]
    # the (bilinear) image still codes each mask column within rounding
    assert (img_t[0].long() - mask_t * 10).abs().max() <= 5
    with pytest.raises(ValueError):
        RandomScale((2.0, 1.0))


def test_shape_mismatch_is_a_mask_error() -> None:
    image, mask = _column_coded()
    with pytest.raises(MaskError, match="20x6"):
        eval_transform()(image, mask[:3])
