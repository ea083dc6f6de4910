"""Trunk features cached once per image, and what follows them run again cheaply.

The trunk (conv1_1 ... fc6 and its ReLU) is by far the costly part of an FCN. Everything the
insight views and the corrections do runs after it: the fc7 tail (``drop6``, ``fc7``,
``relu7``, ``drop7``) and the heads. :class:`TrunkFeatures` keeps pool3, pool4 and the fc6
activation of one image, so Monte Carlo dropout (the dropout layers sit on fc6 and fc7),
the stream decomposition and click correction rerun only the tail and the heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.models.fcn import FCN, run_trunk
from core.models.preprocess import Preprocessing
from core.models.upsampling import CroppedUpsampling, Upsampling
from core.variants import VARIANTS

__all__ = ["TrunkFeatures", "fast_upsampling", "image_tensor", "trunk_features"]

CACHED_LAYER = "relu6"
"""The last trunk layer whose output is cached (fc6 after its ReLU, before ``drop6``)."""

def image_tensor(rgb: np.ndarray, preprocessing: Preprocessing,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """An ``H x W x 3`` uint8 RGB image as the network's normalized ``(1, 3, H, W)`` input."""
    arr = np.ascontiguousarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"an image is H x W x 3, not {arr.shape}")
    t = torch.from_numpy(arr).permute(2, 0, 1)[None].to(device)
    return preprocessing(t)


def _tail_names(model: nn.Module) -> list[str]:
    names = list(model._trunk)
    return names[names.index(CACHED_LAYER) + 1:]


@dataclass
class TrunkFeatures:
    """pool3, pool4 and fc6 (after ReLU) of one input; ``size`` is the input's ``(H, W)``.

    Tensors are ``(N, C, h, w)``, computed without gradients and in eval mode.
    """

    pool3: torch.Tensor
    pool4: torch.Tensor
    fc6: torch.Tensor
    size: tuple[int, int]

    def fc7(self, model: FCN, *, dropout: torch.Generator | None = None,
            p: float | None = None) -> torch.Tensor:
        """The fc7 features (what ``score_fr`` reads) from the cached fc6.

        Args:
            model: The model the features came from.
            dropout: With a generator, ``drop6`` and ``drop7`` drop units (Monte Carlo
                dropout, scaled by ``1 / (1 - p)`` as in training); None: eval mode.
            p: Dropout probability (default: each dropout layer's own).
        """
        x = self.fc6
        for name in _tail_names(model):
            layer = getattr(model, name)
            if isinstance(layer, nn.Dropout):
                if dropout is not None:
                    q = layer.p if p is None else float(p)
                    if q > 0:
                        keep = torch.rand(x.shape, generator=dropout, device=x.device) >= q
                        x = x * keep / (1 - q)
                continue
            if isinstance(layer, nn.ReLU):
                x = torch.relu(x)  # not in place: the cached fc6 must stay intact
                continue
            x = layer(x)
        return x

    def heads_input(self, model: FCN, **fc7_options: object) -> dict[str, torch.Tensor]:
        """The features :meth:`core.models.fcn.FCN.heads` takes (``fc7_options``: see
        :meth:`fc7`)."""
        return {"pool3": self.pool3, "pool4": self.pool4,
                "fc7": self.fc7(model, **fc7_options)}  # type: ignore[arg-type]

    def scores(self, model: FCN, variants: tuple[str, ...] = VARIANTS,
               upsampling: Upsampling | None = None, **fc7_options: object
               ) -> dict[str, torch.Tensor]:
        """``{variant: (N, C, H, W)}`` scores from the cached features (as ``model(x)``)."""
        return model.heads(self.heads_input(model, **fc7_options), self.size, variants,
                           upsampling)


def trunk_features(model: FCN, x: torch.Tensor) -> TrunkFeatures:
    """Run the trunk up to fc6's ReLU on a normalized ``(N, 3, H, W)`` input, once."""
    names = list(model._trunk)
    names = names[: names.index(CACHED_LAYER) + 1]
    with torch.no_grad():
        feats = run_trunk(model, names, x)
    return TrunkFeatures(feats["pool3"], feats["pool4"], feats["fc7"],
                         (int(x.shape[-2]), int(x.shape[-1])))


def fast_upsampling(model: FCN) -> Upsampling | None:
    """The cropped-matrix upsampling when the final upsamplers are fixed bilinear (the same
    sums, faster on a CPU), else None (the model's own layers)."""
    return CroppedUpsampling.try_make(model)
