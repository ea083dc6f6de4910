"""The FCN heads with diagonal upsamplers run per channel.

The final upsamplers (``upscore``, ``upscore16``, ``upscore8``; also the skip ones until
training changes them) are bilinear deconvolutions mapping class c to class c only: their
weight is zero off the diagonal. A dense deconvolution still multiplies every class by
every class, 21 times the needed work for 21 classes, and ONNX Runtime's ConvTranspose is
slow besides (7.5% of a 500x500 FCN-8s pass). :class:`FastHeads` runs each upsampler whose
off-diagonal weights are exactly zero as a grouped (per-class) deconvolution, which
computes the same sums, and crops with slices that keep the exported graph's sizes dynamic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UPSAMPLERS", "FastHeads", "diagonal_weight"]

UPSAMPLERS: tuple[str, ...] = ("upscore", "upscore2", "upscore16", "upscore_pool4", "upscore8")


def diagonal_weight(layer: nn.ConvTranspose2d) -> torch.Tensor | None:
    """``(C, 1, k, k)``: the per-channel kernels of a deconvolution whose weight is zero
    off the class diagonal, or None when it mixes channels (or has a bias or groups)."""
    w = layer.weight
    if layer.groups != 1 or layer.bias is not None or w.shape[0] != w.shape[1]:
        return None
    c = w.shape[0]
    eye = torch.eye(c, dtype=torch.bool, device=w.device)
    with torch.no_grad():
        if bool(w[~eye].any()):
            return None
        return w[torch.arange(c), torch.arange(c)].unsqueeze(1).detach().clone()


class FastHeads(nn.Module):
    """``FCN.heads`` for all three variants, diagonal upsamplers per channel.

    The per-channel kernels are taken when the module is made: make a new one after the
    upsamplers' weights change.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.grouped: list[str] = []
        for name in UPSAMPLERS:
            w = diagonal_weight(getattr(model, name))
            if w is not None:
                self.register_buffer(f"{name}_diag", w, persistent=False)
                self.grouped.append(name)

    def up(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Upsampler ``name`` applied to ``x``."""
        layer = getattr(self.model, name)
        if name in self.grouped:
            w = getattr(self, f"{name}_diag")
            return F.conv_transpose2d(x, w.to(x.dtype), stride=layer.stride,
                                      groups=w.shape[0])
        return layer(x)

    def forward(self, feats: dict[str, torch.Tensor], h: torch.Tensor | int,
                w: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scores ``(32s, 16s, 8s)`` of size ``(h, w)`` from pool3, pool4 and fc7."""
        m = self.model
        off = m.offsets
        score_fr = m.score_fr(feats["fc7"])
        o = off["32s"]
        out32 = self.up("upscore", score_fr)[:, :, o : o + h, o : o + w]
        up2 = self.up("upscore2", score_fr)
        pool4 = feats["pool4"] * 0.01 if m.config.scale_skips else feats["pool4"]
        o = off["score_pool4"]
        fuse4 = up2 + m.score_pool4(pool4)[:, :, o : o + up2.shape[2], o : o + up2.shape[3]]
        o = off["16s"]
        out16 = self.up("upscore16", fuse4)[:, :, o : o + h, o : o + w]
        up4 = self.up("upscore_pool4", fuse4)
        pool3 = feats["pool3"] * 0.0001 if m.config.scale_skips else feats["pool3"]
        o = off["score_pool3"]
        fuse3 = up4 + m.score_pool3(pool3)[:, :, o : o + up4.shape[2], o : o + up4.shape[3]]
        o = off["8s"]
        out8 = self.up("upscore8", fuse3)[:, :, o : o + h, o : o + w]
        return out32, out16, out8
