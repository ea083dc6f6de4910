"""Refine a prediction or a rough mask with the image's edges: a mean-field dense CRF in torch.

The fully connected CRF of Krähenbühl & Koltun (NeurIPS 2011), as DeepLab applies it to
FCN outputs: each pixel's label distribution ``Q`` is updated from its unary (the network's
log-probabilities, or a rough mask made soft) and messages from other pixels, weighted by an
appearance kernel (near *and* similar in colour) and a smoothness kernel (near), with the
Potts compatibility:

    Q <- softmax(log U + w_a * K_a Q + w_s * K_s Q)

The kernels are truncated to a window of ``(2 r + 1)²`` taps spaced ``dilation`` pixels apart
(the updates alternate with a window of ``dilation - 1``, which joins the lattices a spacing
alone leaves apart) and computed exactly inside it, as ConvCRF does (Teichmann & Cipolla,
BMVC 2019), instead of the permutohedral lattice over the whole image; each is normalized
symmetrically (``D^-1/2 K D^-1/2``, pydensecrf's default), so the weights read as "how many
neighbours must agree". This needs nothing beyond torch (wheels everywhere, no compiler, runs on the
GPU too); pydensecrf has no wheels and opencv-contrib's guided filter would replace the
project's OpenCV package (see docs/benchmarks.md, "Refinement and clicks").

:func:`refine` returns the refined labels and the changed pixels; a ``region`` limits the
change (only that part is computed, plus a margin). Apply it with
``LabelImage.replace(result.labels)``: one undoable edit.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from core.annotation.labels import BBox, Region
from core.data.palette import VOID

__all__ = ["CRFConfig", "Refinement", "mean_field", "refine", "soft_labels"]


@dataclass(frozen=True)
class CRFConfig:
    """Mean-field CRF settings (pixels and 0-255 colour units).

    Attributes:
        iterations: Mean-field updates.
        radius: Taps on each side of the window.
        dilation: Spacing of the taps (the window reaches ``radius * dilation`` pixels).
        appearance_weight: ``w_a``, the bilateral kernel's weight.
        theta_alpha: Its spatial standard deviation.
        theta_beta: Its colour standard deviation.
        smoothness_weight: ``w_s``, the spatial kernel's weight.
        theta_gamma: Its spatial standard deviation.
        label_confidence: A rough mask's probability for its own label, far from a label
            boundary; it falls to uniform at the boundary, over ``boundary_band`` pixels,
            so the image decides there.
        boundary_band: See ``label_confidence``.
    """

    iterations: int = 5
    radius: int = 3
    dilation: int = 3
    appearance_weight: float = 10.0
    theta_alpha: float = 8.0
    theta_beta: float = 24.0
    smoothness_weight: float = 1.0
    theta_gamma: float = 2.0
    label_confidence: float = 0.9
    boundary_band: float = 4.0

    def __post_init__(self) -> None:
        if self.iterations < 0 or self.radius < 1 or self.dilation < 1:
            raise ValueError("iterations >= 0, radius >= 1 and dilation >= 1 are required")
        if min(self.theta_alpha, self.theta_beta, self.theta_gamma) <= 0:
            raise ValueError("kernel widths must be positive")
        if not 0 < self.label_confidence < 1:
            raise ValueError("label_confidence must be in (0, 1)")

    @property
    def reach(self) -> int:
        """How far one update reads, in pixels."""
        return self.radius * self.dilation


@dataclass(frozen=True)
class Refinement:
    """Before and after (``H x W`` uint8 labels, 255 = void) and what changed.

    Attributes:
        before: The labels given (or the argmax of the probabilities).
        labels: The refined labels (outside the region: ``before``).
        changed: Where they differ.
        seconds: Time taken.
    """

    before: np.ndarray
    labels: np.ndarray
    changed: np.ndarray
    seconds: float

    @property
    def count(self) -> int:
        """Pixels changed."""
        return int(self.changed.sum())


def _half_offsets(config: CRFConfig) -> list[tuple[int, int]]:
    """One of each pair ``o, -o`` of window offsets (the kernels are symmetric)."""
    r, d = config.radius, config.dilation
    return [(i * d, j * d) for i in range(0, r + 1) for j in range(-r, r + 1)
            if i > 0 or j > 0]


def _pairs(dy: int, dx: int, h: int, w: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Slices of the pixels ``p`` and ``p + (dy, dx)`` where both lie in the image."""
    a = (slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx)))
    b = (slice(max(0, dy), h - max(0, -dy)), slice(max(0, dx), w - max(0, -dx)))
    return a, b


def _windows(config: CRFConfig) -> list[CRFConfig]:
    """The windows the updates take in turn: the configured one, then (when ``dilation >
    1``) one of ``dilation - 1`` reaching as far at most.

    A window of taps ``d`` pixels apart never passes a message between pixels whose rows or
    columns differ by other than a multiple of ``d``: the image falls into ``d²`` lattices
    that decide each on its own (a grid of specks where the labels are uncertain). Two
    coprime spacings in turn join them.
    """
    if config.dilation == 1:
        return [config]
    d = config.dilation - 1
    return [config, dataclasses.replace(config, dilation=d, radius=config.reach // d)]


def _kernel(img: torch.Tensor, config: CRFConfig) -> list[tuple[tuple[int, int], torch.Tensor]]:
    """Each half-window offset and its pairs' weight (both kernels, normalized)."""
    _, h, w = img.shape
    offsets = [(dy, dx) for dy, dx in _half_offsets(config) if abs(dy) < h and abs(dx) < w]
    app, smooth = [], []
    z_app = torch.zeros(h, w, dtype=img.dtype, device=img.device)
    z_smooth = torch.zeros_like(z_app)
    for dy, dx in offsets:  # the kernels' values for every pair in the window
        a, b = _pairs(dy, dx, h, w)
        dist2 = float(dy * dy + dx * dx)
        color2 = (img[:, a[0], a[1]] - img[:, b[0], b[1]]).square().sum(0)
        k = torch.exp(-dist2 / (2 * config.theta_alpha ** 2)
                      - color2 / (2 * config.theta_beta ** 2))
        g = math.exp(-dist2 / (2 * config.theta_gamma ** 2))
        app.append(k)
        smooth.append(g)
        z_app[a] += k
        z_app[b] += k
        z_smooth[a] += g
        z_smooth[b] += g
    ia = z_app.clamp_min(1e-12).rsqrt()
    ig = z_smooth.clamp_min(1e-12).rsqrt()
    weights = []
    for (dy, dx), k, g in zip(offsets, app, smooth, strict=True):
        a, b = _pairs(dy, dx, h, w)
        weights.append(((dy, dx), config.appearance_weight * k * ia[a] * ia[b]
                        + config.smoothness_weight * g * ig[a] * ig[b]))
    return weights


def mean_field(image: torch.Tensor, log_unary: torch.Tensor, config: CRFConfig | None = None
               ) -> torch.Tensor:
    """Mean-field inference: ``(C, H, W)`` probabilities ``Q``.

    The updates take the windows of :func:`_windows` in turn.

    Args:
        image: ``(3, H, W)`` float colours (0-255).
        log_unary: ``(C, H, W)`` log-probabilities (or any logits).
        config: Kernels and iterations.
    """
    config = config or CRFConfig()
    _, h, w = log_unary.shape
    img = image.to(log_unary)
    kernels = [_kernel(img, c) for c in _windows(config)] if config.iterations else []
    q = log_unary.softmax(0)
    for step in range(config.iterations):
        message = torch.zeros_like(q)
        for (dy, dx), wt in kernels[step % len(kernels)]:
            a, b = _pairs(dy, dx, h, w)
            message[:, a[0], a[1]].addcmul_(wt, q[:, b[0], b[1]])
            message[:, b[0], b[1]].addcmul_(wt, q[:, a[0], a[1]])
        q = (log_unary + message).softmax(0)
    return q


def soft_labels(labels: np.ndarray, num_classes: int, config: CRFConfig | None = None
                ) -> torch.Tensor:
    """``(C, H, W)`` log-probabilities from a label map: ``label_confidence`` for its label
    away from label boundaries, uniform at them and on void pixels."""
    config = config or CRFConfig()
    lab = np.asarray(labels)
    h, w = lab.shape
    boundary = np.zeros((h, w), bool)
    boundary[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    boundary[:, :-1] |= lab[:, 1:] != lab[:, :-1]
    boundary[1:] |= lab[1:] != lab[:-1]
    boundary[:-1] |= lab[1:] != lab[:-1]
    dist = cv2.distanceTransform((~boundary).astype(np.uint8), cv2.DIST_L2, 3)
    uniform = 1.0 / num_classes
    ramp = np.clip(dist / max(config.boundary_band, 1e-6), 0, 1)
    conf = uniform + (config.label_confidence - uniform) * ramp
    other = (1 - conf) / max(1, num_classes - 1)
    probs = np.repeat(other[None], num_classes, axis=0).astype(np.float32)
    valid = lab != VOID
    idx = np.where(valid, lab, 0).astype(np.int64)
    np.put_along_axis(probs, idx[None], np.where(valid, conf, other)[None].astype(np.float32),
                      axis=0)
    probs[:, ~valid] = uniform
    return torch.from_numpy(np.log(probs))


def _region_mask(region: np.ndarray | BBox | Region | None, shape: tuple[int, int]
                 ) -> np.ndarray | None:
    if region is None:
        return None
    if isinstance(region, Region):
        return region.to_full(shape)
    if isinstance(region, BBox):
        mask = np.zeros(shape, bool)
        mask[region.slices] = True
        return mask
    mask = np.asarray(region, bool)
    if mask.shape != shape:
        raise ValueError(f"region is {mask.shape}, the image is {shape}")
    return mask


def refine(image: np.ndarray, *, probabilities: np.ndarray | torch.Tensor | None = None,
           labels: np.ndarray | None = None, num_classes: int | None = None,
           region: np.ndarray | BBox | Region | None = None, fill_void: bool = False,
           config: CRFConfig | None = None) -> Refinement:
    """Refine a prediction (``probabilities``) or a rough mask (``labels``) with the image.

    Args:
        image: ``H x W x 3`` uint8 RGB.
        probabilities: ``(C, H, W)`` class probabilities (e.g. the 8s softmax).
        labels: ``H x W`` labels (255 = void), when there are no probabilities.
        num_classes: Needed with ``labels``.
        region: Only these pixels may change (a mask, a box or a tool's Region; None: all).
        fill_void: Let void pixels of ``labels`` take a class (else they stay void).
        config: CRF settings.

    Raises:
        ValueError: Neither or both inputs, or sizes that do not match.
    """
    t0 = time.perf_counter()
    config = config or CRFConfig()
    rgb = np.asarray(image)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"an image is H x W x 3, not {rgb.shape}")
    shape = rgb.shape[:2]
    if (probabilities is None) == (labels is None):
        raise ValueError("give either probabilities or labels")
    if probabilities is not None:
        p = torch.as_tensor(probabilities).float()
        if p.ndim != 3 or tuple(p.shape[1:]) != shape:
            raise ValueError(f"probabilities must be (C, {shape[0]}, {shape[1]})")
        before = p.argmax(0).cpu().numpy().astype(np.uint8)
        log_u = p.clamp_min(1e-8).log()
    else:
        if num_classes is None:
            raise ValueError("num_classes is needed with labels")
        before = np.asarray(labels).astype(np.uint8)
        if before.shape != shape:
            raise ValueError(f"labels are {before.shape}, the image is {shape}")
        log_u = soft_labels(before, num_classes, config)
    mask = _region_mask(region, shape)
    after = before.copy()
    if mask is None:
        box = BBox(0, 0, shape[1], shape[0])
    else:
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if rows.size == 0:
            return Refinement(before, after, np.zeros(shape, bool), time.perf_counter() - t0)
        m = config.reach * max(1, config.iterations)
        box = BBox(max(0, int(cols[0]) - m), max(0, int(rows[0]) - m),
                   min(shape[1], int(cols[-1]) + 1 + m), min(shape[0], int(rows[-1]) + 1 + m))
    img = torch.from_numpy(np.ascontiguousarray(rgb[box.slices])).permute(2, 0, 1).float()
    with torch.no_grad():
        q = mean_field(img.to(log_u.device), log_u[:, box.slices[0], box.slices[1]], config)
    refined = q.argmax(0).cpu().numpy().astype(np.uint8)
    allowed = np.ones(refined.shape, bool) if mask is None else mask[box.slices]
    if labels is not None and not fill_void:
        allowed &= before[box.slices] != VOID
    after[box.slices][allowed] = refined[allowed]
    return Refinement(before, after, after != before, time.perf_counter() - t0)
