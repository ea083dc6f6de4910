"""Click and scribble correction with the model: adapt it to one image in a second or two.

The user marks a wrong region with positive clicks ("this is class c"), negative clicks
("this is not class c") or short scribbles. :class:`ClickCorrector` optimizes, on the
image's cached trunk features only, in the spirit of f-BRS (Sofiiuk et al., CVPR 2020):

* the heads: ``score_fr``, ``score_pool4``, ``score_pool3`` and the learned skip upsamplers
  (copies; the model is never changed; the fixed final upsamplers stay);
* a per-channel scale and bias of fc7 before its ReLU, f-BRS's "feature scale and bias" on
  the last trunk-side layer. It is exact on cached tensors: fc7's output is computed once
  from the cached fc6 and only the affine map and what follows run in each step.

The loss is the cross-entropy of the clicked pixels (a disk around each click, each click
weighted alike) plus a regularizer: the cross-entropy to the current labels on a random grid
of pixels away from the clicks, and a small pull of the parameters back to where they were
before the preview (the model's own, or the last accepted correction's). Each
step computes the output only on a grid of rows and columns that holds every clicked pixel
(:class:`~core.models.upsampling.CroppedUpsampling`), so a step costs milliseconds.

:meth:`ClickCorrector.preview` returns the re-predicted labels and the preview region: the
connected changes that touch a click. :meth:`ClickCorrector.accept` puts that region into the
mask (the app applies it with ``LabelImage.replace``, so it is one undoable edit and the
pixels count as corrected for the next fine-tune) and keeps the adapted parameters for the
next click; :meth:`ClickCorrector.reject` forgets the clicks since the last accept.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from core.annotation.tools import brush_stroke
from core.data.palette import VOID
from core.insight.features import TrunkFeatures, fast_upsampling
from core.models.fcn import FCN, SCORE_LAYERS
from core.models.upsampling import SKIP_UPSAMPLERS

__all__ = [
    "Click",
    "ClickConfig",
    "ClickCorrector",
    "Correction",
    "Scribble",
    "correct_clicks",
    "simulate_click",
]


@dataclass(frozen=True)
class Click:
    """A click at ``(x, y)``: the pixels there are (``positive``) or are not ``label``."""

    x: float
    y: float
    label: int
    positive: bool = True


@dataclass(frozen=True)
class Scribble:
    """A short stroke through ``points`` (``(x, y)``) of ``radius``, like a click."""

    points: tuple[tuple[float, float], ...]
    label: int
    positive: bool = True
    radius: float = 2.0


@dataclass(frozen=True)
class ClickConfig:
    """How a correction is optimized.

    Attributes:
        iterations: Most optimizer steps per preview.
        seconds: Stop earlier after this long (None: no limit).
        lr: Adam learning rate.
        click_radius: Pixels around a click that it labels.
        keep_weight: Weight of the cross-entropy to the current labels.
        keep_pixels: Pixels of the random grid that term uses per step.
        keep_margin: Pixels this close to a click are not held to the current labels; the
            hold grows linearly to full strength over ``keep_ramp`` more pixels, so that the
            wrong region around a click is free to change and the rest of the image is not.
        keep_ramp: See ``keep_margin``.
        release: Pixels whose current label is the one a click corrects (the label under a
            positive click, the label of a negative one) and whose colour is like the
            clicked pixels' are held up to this much less, so that a click can fix the whole
            wrong region, not only its surroundings, without flooding the rest of that class
            (needs the image: :meth:`ClickCorrector.__init__`'s ``image``).
        color_sigma: How alike (CIELAB distance of the smoothed image) counts as like.
        accept_likeness: With the image, the preview keeps only changes at least this like
            the clicked pixels in colour (or under the click), so that a click does not
            spill into a neighbouring object of another colour (0: no such limit).
        anchor: Weight of the pull of the parameters back to where the preview started.
        adapt_fc7: Also learn fc7's per-channel scale and bias (f-BRS style).
        variant: The output the user corrects.
        seed: Seeds the grids.
        threads: Torch intra-op threads while a preview runs (restored afterwards; None:
            leave them). Its tensors are small, and on a busy CPU one thread avoids the
            waits of threads that share cores (measured: 3 ms against 135 ms per step on
            two loaded cores). The setting is process-wide while it lasts.
    """

    iterations: int = 40
    seconds: float | None = None
    lr: float = 0.01
    click_radius: float = 5.0
    keep_weight: float = 1.0
    keep_pixels: int = 6000
    keep_margin: float = 10.0
    keep_ramp: float = 60.0
    release: float = 1.0
    color_sigma: float = 16.0
    accept_likeness: float = 0.3
    anchor: float = 0.05
    adapt_fc7: bool = True
    variant: str = "8s"
    seed: int = 0
    threads: int | None = 1


@dataclass(frozen=True)
class Correction:
    """A preview.

    Attributes:
        labels: ``(H, W)`` uint8: the adapted model's prediction of the whole image.
        region: ``(H, W)`` bool: the changes to accept (connected changes touching a click).
        changed: ``(H, W)`` bool: every pixel whose label the adapted model changed.
        iterations: Steps taken.
        seconds: Time taken.
        loss: The last step's loss.
    """

    labels: np.ndarray
    region: np.ndarray
    changed: np.ndarray
    iterations: int
    seconds: float
    loss: float

    def apply(self, current: np.ndarray) -> np.ndarray:
        """``current`` with the preview region replaced by the new labels (a new array)."""
        out = np.array(current, dtype=np.uint8, copy=True)
        out[self.region] = self.labels[self.region]
        return out


class _Adapted(torch.nn.Module):
    """The trainable copies: the score layers, the learned skip upsamplers, fc7's affine."""

    def __init__(self, model: FCN, channels: int) -> None:
        super().__init__()
        names = [*SCORE_LAYERS, *(n for n in SKIP_UPSAMPLERS
                                  if getattr(model, n).weight.requires_grad)]
        self.layers = torch.nn.ModuleDict(
            {n: copy.deepcopy(getattr(model, n)).requires_grad_(True) for n in names})
        self.scale = torch.nn.Parameter(torch.ones(channels))
        self.bias = torch.nn.Parameter(torch.zeros(channels))


def _shell(model: FCN, layers: torch.nn.ModuleDict) -> FCN:
    """A shallow copy of ``model`` whose head layers are ``layers`` (the trunk is shared and
    never run), so that ``FCN.heads`` is the one skip fusion used here too."""
    shell = copy.copy(model)
    shell._modules = {**model._modules, **dict(layers.items())}
    return shell


class ClickCorrector:
    """Click / scribble correction of one image's prediction (see the module doc)."""

    def __init__(self, model: FCN, features: TrunkFeatures, current: np.ndarray,
                 config: ClickConfig | None = None, *, image: np.ndarray | None = None
                 ) -> None:
        """Prepare the corrector of one image.

        Args:
            model: The FCN (left unchanged).
            features: The image's cached trunk features (batch of one).
            current: ``(H, W)`` labels being corrected (the mask, or the prediction);
                255 = void.
            config: Optimizer settings.
            image: The ``H x W x 3`` uint8 RGB image: with it, the pixels like the clicked
                ones are free to change (see :class:`ClickConfig`'s ``release``).
        """
        self.model = model
        self.features = features
        self.config = config or ClickConfig()
        self.current = np.array(current, dtype=np.uint8, copy=True)
        if self.current.shape != features.size:
            raise ValueError(f"labels are {self.current.shape}, the image is {features.size}")
        if features.fc6.shape[0] != 1:
            raise ValueError("click correction takes the features of one image")
        with torch.no_grad():  # fc7 before its ReLU, once: only the affine map is learned
            self._fc7 = model.fc7(features.fc6.detach()).detach()
        self._adapted = _Adapted(model, self._fc7.shape[1])
        self._shell = _shell(model, self._adapted.layers)
        self._initial = {k: v.detach().clone() for k, v in self._adapted.state_dict().items()}
        self._accepted = copy.deepcopy(self._initial)
        self._candidate = self._accepted
        self._hints: list[Click | Scribble] = []
        self._pending = 0
        self._up = fast_upsampling(model)
        self._gen = torch.Generator().manual_seed(self.config.seed)
        self._lab: np.ndarray | None = None
        if image is not None:
            rgb = np.ascontiguousarray(image, dtype=np.uint8)
            if rgb.shape[:2] != self.current.shape:
                raise ValueError(f"image is {rgb.shape[:2]}, the labels {self.current.shape}")
            smooth = cv2.GaussianBlur(rgb.astype(np.float32) / 255, (0, 0), 2)
            self._lab = cv2.cvtColor(smooth, cv2.COLOR_RGB2LAB)

    def _likeness(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """How like the pixels ``(ys, xs)`` in colour every pixel is (1 = the same)."""
        lab = self._lab
        assert lab is not None
        d2 = np.square(lab - lab[ys, xs].mean(axis=0)).sum(axis=2)
        return np.exp(-d2 / (2 * self.config.color_sigma ** 2)).astype(np.float32)

    # ------------------------------------------------------------------ hints

    @property
    def hints(self) -> list[Click | Scribble]:
        """Every click and scribble so far (accepted and pending)."""
        return list(self._hints)

    def add(self, hint: Click | Scribble) -> None:
        """Add a click or a scribble (pending until :meth:`accept`)."""
        n = self.model.config.num_classes
        if not 0 <= int(hint.label) < n:
            raise ValueError(f"label {hint.label} is not one of the {n} classes")
        if len(self._hint_pixels(hint)[0]) == 0:
            raise ValueError(f"{hint} has no pixel inside the image")
        self._hints.append(hint)
        self._pending += 1

    def _hint_pixels(self, hint: Click | Scribble) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(hint, Click):
            region = brush_stroke([(hint.x, hint.y)], self.config.click_radius, self.current.shape)
        else:
            region = brush_stroke(list(hint.points), hint.radius, self.current.shape)
        ys, xs = np.nonzero(region.mask)
        return ys + region.bbox.y0, xs + region.bbox.x0

    # ------------------------------------------------------------------ model

    def _scores(self, pick: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        a = self._adapted
        fc7 = torch.relu(self._fc7 * a.scale[None, :, None, None] + a.bias[None, :, None, None])
        feats = {"pool3": self.features.pool3, "pool4": self.features.pool4, "fc7": fc7}
        v = self.config.variant
        up = self._up.picking(pick) if self._up is not None else None
        out = self._shell.heads(feats, self.features.size, (v,), up)[v][0]
        if pick is not None and self._up is None:
            out = out[:, pick[0]][:, :, pick[1]]
        return out

    def _grid(self, hint_rows: np.ndarray, hint_cols: np.ndarray
              ) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = self.current.shape
        f = max(1.0, (h * w / max(1, self.config.keep_pixels)) ** 0.5)
        rows = torch.randperm(h, generator=self._gen)[: max(1, round(h / f))].numpy()
        cols = torch.randperm(w, generator=self._gen)[: max(1, round(w / f))].numpy()
        return (torch.from_numpy(np.union1d(rows, hint_rows)),
                torch.from_numpy(np.union1d(cols, hint_cols)))

    # ------------------------------------------------------------------ correction

    def preview(self) -> Correction:
        """Adapt the model to every click and scribble and re-predict the image."""
        threads = torch.get_num_threads()
        if self.config.threads is not None:
            torch.set_num_threads(self.config.threads)
        try:
            return self._preview()
        finally:
            torch.set_num_threads(threads)

    def _preview(self) -> Correction:
        t0 = time.perf_counter()
        cfg = self.config
        self._adapted.load_state_dict(self._accepted)
        pixels = [self._hint_pixels(h) for h in self._hints]
        hint_rows = np.unique(np.concatenate([p[0] for p in pixels])) if pixels else np.empty(0)
        hint_cols = np.unique(np.concatenate([p[1] for p in pixels])) if pixels else np.empty(0)
        near = np.zeros(self.current.shape, np.uint8)
        for ys, xs in pixels:
            near[ys, xs] = 1
        if pixels:
            dist = cv2.distanceTransform(1 - near, cv2.DIST_L2, 3)
            hold = np.clip((dist - cfg.keep_margin) / max(cfg.keep_ramp, 1e-6), 0, 1)
        else:
            hold = np.ones(self.current.shape, np.float32)
        free = np.zeros(self.current.shape, np.float32)
        for hint, (ys, xs) in zip(self._hints, pixels, strict=True):
            wrong = np.unique(self.current[ys, xs]) if hint.positive else [hint.label]
            wrong = [w for w in wrong if w != hint.label or not hint.positive]
            like = self._likeness(ys, xs) if self._lab is not None else 0.0
            free = np.maximum(free, np.isin(self.current, wrong) * like)
        hold = hold * (1 - cfg.release * free) * (self.current != VOID)
        hold = torch.from_numpy(hold.astype(np.float32))
        current = torch.from_numpy(self.current.astype(np.int64))
        params = [p for n, p in self._adapted.named_parameters()
                  if cfg.adapt_fc7 or n not in ("scale", "bias")]
        optimizer = torch.optim.Adam(params, lr=cfg.lr)
        start = [p.detach().clone() for p in params]
        loss_value, steps = 0.0, 0
        for _ in range(cfg.iterations if self._hints else 0):
            if cfg.seconds is not None and time.perf_counter() - t0 > cfg.seconds:
                break
            rows, cols = self._grid(hint_rows, hint_cols)
            logp = F.log_softmax(self._scores((rows, cols)), 0)
            hint_loss = torch.zeros(())
            for hint, (ys, xs) in zip(self._hints, pixels, strict=True):
                ri = torch.searchsorted(rows, torch.from_numpy(ys))  # rows, cols are sorted
                ci = torch.searchsorted(cols, torch.from_numpy(xs))
                lp = logp[hint.label, ri, ci]
                term = -lp if hint.positive else -torch.log1p(-lp.exp().clamp(max=1 - 1e-6))
                hint_loss = hint_loss + term.mean()
            loss = hint_loss / max(1, len(self._hints))
            weight = hold[rows][:, cols]
            if cfg.keep_weight > 0 and bool((weight > 0).any()):
                target = current[rows][:, cols].clamp(max=logp.shape[0] - 1)
                nll = -logp.gather(0, target[None])[0]
                keep = (weight * nll).sum() / weight.sum()
                loss = loss + cfg.keep_weight * keep
            if cfg.anchor > 0:
                loss = loss + cfg.anchor * sum(((p - s) ** 2).sum() for p, s in
                                               zip(params, start, strict=True))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_value, steps = float(loss.detach()), steps + 1
        with torch.no_grad():
            labels = self._scores(None).argmax(0).numpy().astype(np.uint8)
        changed = labels != self.current
        region = np.zeros(changed.shape, bool)
        for hint, (ys, xs) in zip(self._hints, pixels, strict=True):
            wanted = labels == hint.label if hint.positive else self.current == hint.label
            seeds = np.zeros(changed.shape, bool)
            seeds[ys, xs] = True
            if self._lab is not None and cfg.accept_likeness > 0:
                wanted &= seeds | (self._likeness(ys, xs) >= cfg.accept_likeness)
            region |= _touching(changed & wanted, seeds)
        self._candidate = {k: v.detach().clone() for k, v in self._adapted.state_dict().items()}
        return Correction(labels, region, changed, steps, time.perf_counter() - t0, loss_value)

    def accept(self, correction: Correction) -> np.ndarray:
        """Put the preview's region into the current labels and keep the adapted model.

        Returns:
            The new current labels (what the mask should become).
        """
        self.current = correction.apply(self.current)
        self._accepted = self._candidate
        self._pending = 0
        return self.current.copy()

    def reject(self) -> None:
        """Forget the clicks and scribbles since the last :meth:`accept`."""
        if self._pending:
            del self._hints[-self._pending:]
        self._pending = 0

    def set_current(self, labels: np.ndarray) -> None:
        """The mask changed by other means (a brush stroke, undo): correct that from now on."""
        labels = np.asarray(labels, np.uint8)
        if labels.shape != self.current.shape:
            raise ValueError(f"labels are {labels.shape}, the image is {self.current.shape}")
        self.current = labels.copy()


def _touching(changed: np.ndarray, hints: np.ndarray) -> np.ndarray:
    """The 8-connected parts of ``changed`` that overlap ``hints``."""
    if not changed.any() or not hints.any():
        return np.zeros(changed.shape, bool)
    _, comp = cv2.connectedComponents(changed.astype(np.uint8), connectivity=8)
    hit = np.unique(comp[hints & changed])
    return np.isin(comp, hit[hit > 0])


def simulate_click(current: np.ndarray, truth: np.ndarray) -> Click | None:
    """The click interactive-segmentation benchmarks make, for many classes: at the pixel
    farthest from the border of the largest error region (connected wrong pixels of one true
    class), positive, with that class. None when nothing is wrong."""
    best: tuple[int, int, np.ndarray] | None = None
    for c in np.unique(truth[(current != truth) & (truth != VOID)]):
        error = ((current != truth) & (truth == c)).astype(np.uint8)
        _, comp, stats, _ = cv2.connectedComponentsWithStats(error, connectivity=8)
        k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        if best is None or stats[k, cv2.CC_STAT_AREA] > best[0]:
            best = (int(stats[k, cv2.CC_STAT_AREA]), int(c), comp == k)
    if best is None:
        return None
    dist = cv2.distanceTransform(np.pad(best[2], 1).astype(np.uint8), cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(np.argmax(dist[1:-1, 1:-1])), best[2].shape)
    return Click(float(x), float(y), best[1], True)


def correct_clicks(corrector: ClickCorrector, clicks: Sequence[Click | Scribble]
                   ) -> Correction:
    """Add ``clicks`` and preview (a convenience for scripts and tests)."""
    for c in clicks:
        corrector.add(c)
    return corrector.preview()
