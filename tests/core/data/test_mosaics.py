"""Texture mosaics (real photographs, exact labels) and simulated scribbles."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from core.data.mosaics import mosaic, scribbles

TEXTURES = [skimage.data.brick(), skimage.data.grass(), skimage.data.gravel()]


def test_every_pixel_comes_from_its_class_texture() -> None:
    rgb, mask = mosaic(TEXTURES, (128, 160), seed=3, regions=9)
    assert rgb.shape == (128, 160, 3) and mask.shape == (128, 160)
    assert set(np.unique(mask)) == {0, 1, 2}  # every class appears
    for k, tex in enumerate(TEXTURES):
        where = mask == k
        values = rgb[where][:, 0]
        # gray photos: the pixels are the texture's own values, found as a crop of it
        ys, xs = np.nonzero(where)
        found = False
        for y0 in range(tex.shape[0] - 128 + 1):
            row = tex[y0 + ys[0], :]
            for x0 in np.flatnonzero(row == values[0]):
                x0 -= xs[0]
                if 0 <= x0 <= tex.shape[1] - 160 and np.array_equal(
                        tex[y0:y0 + 128, x0:x0 + 160][where], values):
                    found = True
                    break
            if found:
                break
        assert found, f"class {k}: not a crop of its texture"


def test_parts_keep_training_and_held_out_crops_apart() -> None:
    columns = np.tile((np.arange(512) // 2).astype(np.uint8), (512, 1))  # value = column / 2
    for seed in range(5):
        train, _ = mosaic([columns, columns], (64, 64), seed=seed, part=(0.0, 0.5))
        held, _ = mosaic([columns, columns], (64, 64), seed=seed, part=(0.5, 1.0))
        assert train.max() < 128 <= held.min()  # from the left half, from the right half
    with pytest.raises(ValueError, match="smaller"):
        mosaic(TEXTURES, (300, 300), seed=0, part=(0.0, 0.5))
    with pytest.raises(ValueError):
        mosaic([np.zeros((64, 64), np.float32)], (32, 32), seed=0)


def test_scribbles_label_a_small_share_of_each_class_inside_it() -> None:
    _, mask = mosaic(TEXTURES, (256, 256), seed=1)
    s = scribbles(mask, 0.02, seed=0)
    assert np.array_equal(scribbles(mask, 0.02, seed=0), s)  # deterministic
    labelled = s != 255
    assert np.array_equal(s[labelled], mask[labelled])  # never a wrong label
    for c in range(3):
        share = (s == c).sum() / (mask == c).sum()
        assert 0.01 < share < 0.06, (c, share)
    assert 0.01 < labelled.mean() < 0.06
