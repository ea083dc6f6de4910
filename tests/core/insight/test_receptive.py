"""Receptive fields from the layer geometry: known VGG16 values, exactness by perturbation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.insight.receptive import (
    effective_receptive_fields,
    mass_box,
    receptive_field,
    receptive_fields,
)
from core.models import fcn_vgg16
from core.models.geometry import receptive_span
from tests.core.insight.conftest import randomized_fcn

pytestmark = pytest.mark.usefixtures("one_thread")

# Receptive field sizes of VGG16 (Simonyan & Zisserman's 3x3 stacks, 2x2 pools), as usually
# tabulated (e.g. Araujo et al., Distill 2019): pool3 44, pool4 100, conv5_3 196, pool5 212;
# fc6 as a 7x7 convolution on pool5 (stride 32) adds 6 * 32: 404, and fc7 (1x1) keeps it.
VGG16_FIELDS = {"conv1_1": 3, "conv1_2": 5, "pool1": 6, "conv2_2": 14, "pool2": 16,
                "conv3_3": 40, "pool3": 44, "conv4_3": 92, "pool4": 100, "conv5_3": 196,
                "pool5": 212, "fc6": 404, "fc7": 404}


@pytest.mark.parametrize("padding", [1, 100])
def test_vgg16_receptive_field_sizes(padding: int) -> None:
    model = fcn_vgg16(num_classes=2, width=0.0625)
    model.conv1_1.padding = (padding, padding)
    for last, size in VGG16_FIELDS.items():
        names = list(model._trunk)
        path = [getattr(model, n) for n in names[: names.index(last) + 1]]
        lo, hi = receptive_span(path, 2000, 20, clip=False)
        assert hi - lo + 1 == size, last


def test_fcn_field_sizes_and_phases() -> None:
    model = fcn_vgg16(num_classes=2, width=0.0625)
    sizes = {v: set() for v in ("32s", "16s", "8s")}
    for y in range(300, 364):
        for v, f in receptive_fields(model, y, 3, (1000, 8)).items():
            sizes[v].add(f.size[0])
            assert f.box.y0 >= 0 and f.box.y1 <= 1000 and f.box.x0 == 0 and f.box.x1 == 8
    # 32s: two fc7 cells through upscore (k64 s32); the skips' deconvolutions reach a third
    # cell for some output phases
    assert sizes == {"32s": {436}, "16s": {436, 468}, "8s": {436, 468}}
    field = receptive_field(model, "32s", 0, 0, (100, 100))
    assert field.theoretical.x0 < 0  # reaches into the padding of 100
    assert field.box == (0, 0, 100, 100)


@pytest.mark.parametrize(("variant", "y", "x"), [("32s", 4, 300), ("16s", 300, 10),
                                                 ("8s", 250, 290), ("8s", 0, 319)])
def test_the_field_is_exact(variant: str, y: int, x: int) -> None:
    model = randomized_fcn(seed=7).double()
    size = (320, 320)
    box = receptive_field(model, variant, y, x, size).box
    assert 0 < box.area < 320 * 320
    gen = torch.Generator().manual_seed(0)
    img = torch.randn(1, 3, *size, generator=gen, dtype=torch.float64)
    outside = torch.ones(size, dtype=torch.bool)
    outside[box.slices] = False
    noise = 10 * torch.randn(img.shape, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        ref = model(img, variants=(variant,))[variant][0, :, y, x]
        far = model(img + noise * outside, variants=(variant,))[variant][0, :, y, x]
        rim = torch.zeros(size, dtype=torch.bool)  # the box's outermost rows and columns
        rim[box.y0, box.x0:box.x1] = rim[box.y1 - 1, box.x0:box.x1] = True
        rim[box.y0:box.y1, box.x0] = rim[box.y0:box.y1, box.x1 - 1] = True
        near = model(img + noise * rim, variants=(variant,))[variant][0, :, y, x]
    assert torch.equal(ref, far)  # nothing outside the box reaches the output
    assert not torch.allclose(ref, near, atol=1e-9)  # its rim does


def test_effective_field_lies_inside_the_theoretical_one() -> None:
    model = randomized_fcn(seed=8)
    x = torch.randn(1, 3, 300, 300)
    maps = effective_receptive_fields(model, x, 20, 280)
    assert set(maps) == {"32s", "16s", "8s"}
    for v, m in maps.items():
        box = receptive_field(model, v, 20, 280, (300, 300)).box
        inside = np.zeros(m.shape, bool)
        inside[box.slices] = True
        assert m.shape == (300, 300) and m[inside].sum() > 0
        assert not m[~inside].any()
        core = mass_box(m, 0.9)
        assert box.x0 <= core.x0 < core.x1 <= box.x1 and box.y0 <= core.y0 < core.y1 <= box.y1
    assert not model.training


def test_mass_box() -> None:
    w = np.zeros((50, 40))
    w[10:20, 5:9] = 1
    assert mass_box(w, 1.0) == (5, 10, 9, 20)
    assert mass_box(np.zeros((3, 3))).area == 0
