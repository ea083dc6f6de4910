"""Receptive fields of the FCN outputs: the theoretical rectangle and the effective field.

The theoretical field of an output pixel follows from the layer geometry alone
(:func:`core.models.geometry.receptive_span` backwards through each stream's path: the
trunk, the score layer, the skip crop, the deconvolutions, the final crop). Every map is
clipped to its real size on the way (padding holds no image pixel), so the rectangle is
exact: no pixel outside it can change the output. A variant's field is the union over its
streams (32s: score_fr; 16s: + pool4; 8s: + pool3). ``theoretical`` keeps the unclipped
rectangle too, which reaches into conv1_1's padding of 100. Through a deconvolution the
field depends on the output's phase, so fields of neighbouring pixels differ in size
(32s: 436 pixels; 16s and 8s: 436 or 468).

The effective field (Luo et al., NeurIPS 2016) is the magnitude of the gradient of the output
(the winning class's logit at that pixel) with respect to the input: where the network
actually looks, usually a small, roughly Gaussian part of the theoretical one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.annotation.labels import BBox
from core.models.fcn import FCN
from core.models.geometry import Crop, output_length, receptive_span
from core.models.upsampling import FINAL_UPSAMPLERS
from core.variants import VARIANTS

__all__ = [
    "ReceptiveField",
    "effective_receptive_fields",
    "mass_box",
    "receptive_field",
    "receptive_fields",
]

Step = nn.Module | Crop
"""A layer, or a crop ``(offset, output length)`` (:data:`core.models.geometry.Crop`)."""


@dataclass(frozen=True)
class ReceptiveField:
    """The theoretical receptive field of one output pixel.

    Attributes:
        variant: "32s", "16s" or "8s".
        y: Row of the output pixel.
        x: Column of the output pixel.
        box: The image pixels that can change the output (half-open, clipped to the image).
        theoretical: The same before clipping to any map (reaches into the padding).
        streams: ``{stream: box}`` of each stream's path (``box`` is their union).
    """

    variant: str
    y: int
    x: int
    box: BBox
    theoretical: BBox
    streams: dict[str, BBox]

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the theoretical (unclipped) field."""
        return self.theoretical.height, self.theoretical.width


def _trunk_until(model: FCN, last: str) -> list[nn.Module]:
    names = list(model._trunk)
    return [getattr(model, n) for n in names[: names.index(last) + 1]]


def stream_paths(model: FCN, length: int) -> dict[str, dict[str, list[Step]]]:
    """``{variant: {stream: steps}}`` from the image to each output along an axis of
    ``length`` pixels (the geometry of :meth:`core.models.fcn.FCN.heads`)."""
    def run(steps: list[nn.Module], n: int) -> int:
        for layer in steps:
            n = output_length(layer, n)
        return n

    trunk = _trunk_until(model, "drop7")
    fr = [*trunk, model.score_fr]
    n_up2 = run([*fr, model.upscore2], length)
    n_up4 = output_length(model.upscore_pool4, n_up2)
    pool4 = [*_trunk_until(model, "pool4"), (model.offsets["score_pool4"], n_up2),
             model.score_pool4]
    pool3 = [*_trunk_until(model, "pool3"), (model.offsets["score_pool3"], n_up4),
             model.score_pool3]
    final = {v: [getattr(model, FINAL_UPSAMPLERS[v]), (model.offsets[v], length)]
             for v in VARIANTS}
    return {
        "32s": {"score_fr": [*fr, *final["32s"]]},
        "16s": {"score_fr": [*fr, model.upscore2, *final["16s"]],
                "score_pool4": [*pool4, *final["16s"]]},
        "8s": {"score_fr": [*fr, model.upscore2, model.upscore_pool4, *final["8s"]],
               "score_pool4": [*pool4, model.upscore_pool4, *final["8s"]],
               "score_pool3": [*pool3, *final["8s"]]},
    }


def receptive_field(model: FCN, variant: str, y: int, x: int, size: tuple[int, int]
                    ) -> ReceptiveField:
    """The theoretical receptive field of ``variant``'s output pixel ``(y, x)`` for an input
    of ``size = (H, W)``.

    Raises:
        ValueError: An unknown variant, or a pixel outside the image.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")
    h, w = int(size[0]), int(size[1])
    if not (0 <= y < h and 0 <= x < w):
        raise ValueError(f"pixel {(x, y)} is outside the {w}x{h} image")
    rows, cols = stream_paths(model, h)[variant], stream_paths(model, w)[variant]
    boxes: dict[str, BBox] = {}
    theory: BBox | None = None
    for stream in rows:
        r, c = receptive_span(rows[stream], h, y), receptive_span(cols[stream], w, x)
        boxes[stream] = (BBox(c[0], r[0], c[1] + 1, r[1] + 1) if r and c
                         else BBox(0, 0, 0, 0))
        r, c = (receptive_span(rows[stream], h, y, clip=False),
                receptive_span(cols[stream], w, x, clip=False))
        box = BBox(c[0], r[0], c[1] + 1, r[1] + 1)  # type: ignore[index]
        theory = box if theory is None else theory.union(box)
    union = BBox(0, 0, 0, 0)
    for box in boxes.values():
        union = union.union(box)
    return ReceptiveField(variant, int(y), int(x), union, theory, boxes)  # type: ignore[arg-type]


def receptive_fields(model: FCN, y: int, x: int, size: tuple[int, int],
                     variants: Sequence[str] = VARIANTS) -> dict[str, ReceptiveField]:
    """:func:`receptive_field` of each variant (side by side: 32s, 16s, 8s)."""
    return {v: receptive_field(model, v, y, x, size) for v in VARIANTS if v in set(variants)}


def effective_receptive_fields(model: FCN, x: torch.Tensor, y0: int, x0: int,
                               variants: Sequence[str] = VARIANTS,
                               class_index: int | None = None) -> dict[str, np.ndarray]:
    """``{variant: (H, W)}``: the input-gradient magnitude of each output at ``(y0, x0)``.

    One forward pass, one backward pass per variant. The dropout layers are off whatever
    mode the model is in (eval is restored afterwards as it was).

    Args:
        model: The FCN.
        x: The normalized ``(1, 3, H, W)`` input.
        y0: Row of the output pixel.
        x0: Column of the output pixel.
        variants: Which outputs.
        class_index: The logit to differentiate (default: each variant's winning class at
            that pixel).

    Returns:
        The sum over input channels of ``|d logit / d input|`` (float32 numpy).
    """
    h, w = x.shape[-2:]
    if not (0 <= y0 < h and 0 <= x0 < w):
        raise ValueError(f"pixel {(x0, y0)} is outside the {w}x{h} image")
    wanted = [v for v in VARIANTS if v in set(variants)]
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            inp = x.detach().clone().requires_grad_(True)
            out = model(inp, variants=wanted)
            maps: dict[str, np.ndarray] = {}
            for i, v in enumerate(wanted):
                logits = out[v][0, :, y0, x0]
                c = int(logits.argmax()) if class_index is None else int(class_index)
                (grad,) = torch.autograd.grad(logits[c], inp, retain_graph=i < len(wanted) - 1)
                maps[v] = grad[0].abs().sum(0).float().cpu().numpy()
    finally:
        model.train(was_training)
    return maps


def mass_box(weights: np.ndarray, fraction: float = 0.95) -> BBox:
    """The rows and columns holding the central ``fraction`` of the mass of each marginal of
    ``weights`` (the extent of an effective field); an empty box when there is no mass."""
    w = np.asarray(weights, np.float64)
    total = w.sum()
    if total <= 0:
        return BBox(0, 0, 0, 0)
    tail = (1 - fraction) / 2

    def bounds(marginal: np.ndarray) -> tuple[int, int]:
        cdf = np.cumsum(marginal) / total
        lo = int(np.searchsorted(cdf, tail, side="right"))
        hi = int(np.searchsorted(cdf, (1 - tail) * (1 - 1e-9), side="left"))
        return lo, max(lo, hi) + 1

    y0, y1 = bounds(w.sum(1))
    x0, x1 = bounds(w.sum(0))
    return BBox(x0, y0, x1, y1)
