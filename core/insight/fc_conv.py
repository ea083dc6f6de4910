"""The FCN paper's first idea on the user's image: fully connected layers are convolutions.

VGG16's classifier reads a 7 x 7 x 512 pool5 block (a 224 x 224 image) through fc6
(25088 -> 4096), fc7 and fc8. Reshaped to a 7 x 7 convolution and two 1 x 1 convolutions
(:class:`core.models.backbone.ConvolutionalVGG16`, or the FCN's own fc6 / fc7 / score_fr),
the same weights give a dense class-score map for an image of any size: cell ``(i, j)`` is
the classifier's output for the pool5 block at ``(i, j)``, the block of the 224 window at
``(32 i, 32 j)``. :func:`compare_fc_conv` computes both sides, the dense map with the
convolutions and the classifier as matrices on every 7 x 7 block, which agree to float
rounding: one forward pass gives every window's scores and shares the work of the
overlapping windows.

With ``crops=True`` it also runs the whole network on each 224 x 224 crop of the image, the
naive sliding window. Those scores differ a little from the dense map, and :data:`WHY`
says why: the convolutions inside a crop see zero padding at its border where the dense pass
sees the neighbouring pixels (a fc7 unit's receptive field is 404 pixels, wider than the
window), so only the classifier part, not the pixels' context, is literally the same.

The trunk is run with conv1_1's padding of 1 (plain VGG16): an FCN's padding of 100 only
shifts its maps for the crops of the skip fusion.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.annotation.labels import BBox
from core.models.fcn import run_trunk

__all__ = ["STRIDE", "WHY", "WINDOW", "FcConvComparison", "compare_fc_conv"]

WINDOW = 224
"""The classifier's input size."""
STRIDE = 32
"""The trunk's output stride: neighbouring cells of the dense map are windows 32 px apart."""
WHY = (
    "fc6, fc7 and fc8 are matrices applied to a 7x7 block of pool5 features: the classifier "
    "of one 224x224 window. As a 7x7 convolution and two 1x1 convolutions, the same weights "
    "slide over the pool5 map of the whole image, one step per 32 pixels: every cell of the "
    "dense map is exactly the classifier's output for one window, and overlapping windows "
    "share their convolutions. Running the network on each crop gives nearly the same scores "
    "only: inside a crop the convolutions see zero padding at its border instead of the "
    "neighbouring pixels."
)


@dataclass(frozen=True)
class FcConvComparison:
    """Both sides of the comparison for one image (``(C, rows, cols)`` float tensors, CPU).

    Attributes:
        dense: The fully convolutional score map.
        slid: The classifier (fc layers as matrices) on every 7x7 pool5 block, at the same
            cells.
        max_difference: ``max |dense - slid|``.
        crops: The whole network run on each 224 crop inside the image (None unless asked);
            ``crops[:, i, j]`` is the window at ``(32 i, 32 j)``.
        crop_difference: ``max |dense - crops|`` over those windows (None without crops).
        crop_agreement: Fraction of those windows whose winning class agrees (None without).
    """

    dense: torch.Tensor
    slid: torch.Tensor
    max_difference: float
    crops: torch.Tensor | None = None
    crop_difference: float | None = None
    crop_agreement: float | None = None

    @staticmethod
    def window(i: int, j: int) -> BBox:
        """The image window of cell ``(i, j)`` (it may reach past the image's end)."""
        return BBox(STRIDE * j, STRIDE * i, STRIDE * j + WINDOW, STRIDE * i + WINDOW)


def _layers(net: nn.Module, first: str, last: str) -> list[str]:
    names = list(net._trunk)
    return names[names.index(first): names.index(last) + 1]


def _pool5(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """pool5 of ``x`` with conv1_1 at padding 1 (the plain VGG16 geometry)."""
    conv = net.conv1_1
    x = F.conv2d(x, conv.weight, conv.bias, stride=conv.stride, padding=1)
    return run_trunk(net, _layers(net, "relu1_1", "pool5"), x)["fc7"]


def _dense(net: nn.Module, pool5: torch.Tensor) -> torch.Tensor:
    x = pool5
    for name in _layers(net, "fc6", "drop7"):
        layer = getattr(net, name)
        if not isinstance(layer, nn.Dropout):  # the classifier at test time
            x = layer(x)
    return net.score_fr(x)


def _classifier(net: nn.Module, blocks: torch.Tensor) -> torch.Tensor:
    """The fc layers as matrices on ``(L, 512 * 7 * 7)`` flattened pool5 blocks."""
    h = torch.relu(F.linear(blocks, net.fc6.weight.flatten(1), net.fc6.bias))
    h = torch.relu(F.linear(h, net.fc7.weight.flatten(1), net.fc7.bias))
    return F.linear(h, net.score_fr.weight.flatten(1), net.score_fr.bias)


def compare_fc_conv(net: nn.Module, x: torch.Tensor, *, crops: bool = False,
                    max_crops: int = 400) -> FcConvComparison:
    """The dense score map of ``x`` beside the classifier slid over its 224 windows.

    Args:
        net: A :class:`~core.models.backbone.ConvolutionalVGG16` or an FCN (anything with
            the VGG16 trunk names, fc6 / fc7 and ``score_fr``).
        x: The normalized ``(1, 3, H, W)`` input, at least 224 x 224.
        crops: Also run the whole network on each 224 crop (the naive sliding window).
        max_crops: Refuse more crops than this (each is a full VGG16 pass).

    Raises:
        ValueError: The image is smaller than one window, or too many crops.
    """
    h, w = x.shape[-2:]
    if h < WINDOW or w < WINDOW:
        raise ValueError(f"the image ({w}x{h}) is smaller than one {WINDOW}x{WINDOW} window")
    with torch.no_grad():
        pool5 = _pool5(net, x[:1])
        dense = _dense(net, pool5)[0]
        rows, cols = dense.shape[-2:]
        blocks = F.unfold(pool5, kernel_size=7)[0].T  # (rows * cols, 512 * 49)
        slid = _classifier(net, blocks).T.reshape(-1, rows, cols)
        result = FcConvComparison(dense.cpu(), slid.cpu(), float((dense - slid).abs().max()))
        if not crops:
            return result
        n_rows, n_cols = (h - WINDOW) // STRIDE + 1, (w - WINDOW) // STRIDE + 1
        if n_rows * n_cols > max_crops:
            raise ValueError(f"{n_rows * n_cols} crops exceed the limit of {max_crops}")
        out = torch.empty(dense.shape[0], n_rows, n_cols, dtype=dense.dtype)
        for i in range(n_rows):
            batch = torch.cat([x[:1, :, STRIDE * i: STRIDE * i + WINDOW,
                                 STRIDE * j: STRIDE * j + WINDOW] for j in range(n_cols)])
            out[:, i] = _dense(net, _pool5(net, batch))[:, :, 0, 0].T.cpu()
        part = result.dense[:, :n_rows, :n_cols]
    return FcConvComparison(
        result.dense, result.slid, result.max_difference, out,
        float((part - out).abs().max()),
        float((part.argmax(0) == out.argmax(0)).float().mean()),
    )
