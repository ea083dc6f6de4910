"""Tiny FCNs with every score layer and skip upsampler randomized (zeros would sum trivially)."""

from __future__ import annotations

import pytest
import torch

from core.models import fcn_vgg16
from core.models.fcn import FCN


def randomized_fcn(*, num_classes: int = 3, scale_skips: bool = False, seed: int = 0,
                   dropout: float = 0.5) -> FCN:
    """A width-1/16 FCN whose score layers, biases and skip upsamplers are random, in eval."""
    torch.manual_seed(seed)
    model = fcn_vgg16(num_classes=num_classes, width=0.0625, scale_skips=scale_skips,
                      dropout=dropout)
    with torch.no_grad():
        for name in ("score_fr", "score_pool4", "score_pool3"):
            layer = getattr(model, name)
            std = 300.0 if scale_skips and name != "score_fr" else 0.5
            layer.weight.normal_(0, std)
            layer.bias.normal_(0, 0.5)
        for name in ("upscore2", "upscore_pool4"):
            getattr(model, name).weight.add_(0.05 * torch.randn_like(getattr(model, name).weight))
    return model.eval()


@pytest.fixture()
def model() -> FCN:
    return randomized_fcn()
