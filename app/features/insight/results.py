"""What the insight worker is asked (targets, jobs) and what it answers (Qt-free, no torch).

Every result holds numpy arrays and numbers only, in the coordinates of the image the
analysis ran on (:attr:`Scale.size`); :class:`Scale` maps them to the image on screen.
Each result also names the thread that computed it (``thread``), so the tests can check
that no insight work runs on the GUI thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

KINDS = ("geometry", "streams", "class_maps", "pixel", "uncertainty", "fc_conv", "erf",
         "score")
"""Job kinds: the model's layer geometry (for the theoretical receptive fields), the stream
decomposition (with one class's maps), another class's maps, one pixel's breakdown, the
uncertainty maps and regions, fc as convolution, the effective receptive fields at a pixel,
and an image's uncertainty scores (for "next image to correct")."""
INTERACTIVE = ("geometry", "class_maps", "pixel", "erf")
"""Kinds the user waits for: queued before the others; a newer one replaces a queued one."""

MAX_SIDE = 1024
"""Streams, uncertainty and fc-as-conv run on a copy at most this long on its long side."""


def analysis_size(height: int, width: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """``(h, w)`` of the copy the analyses run on: the image's size, scaled down to at most
    ``max_side`` pixels on its long side."""
    factor = max_side / max(height, width)
    if factor >= 1:
        return int(height), int(width)
    return max(1, round(height * factor)), max(1, round(width * factor))


@dataclass(frozen=True)
class Target:
    """The image and the model a job is for.

    Attributes:
        image_key: The image's key (its resolved path, or a name for an unsaved image).
        model_id: The model's id (what its predictions are stored under).
        checkpoint: The model's checkpoint file (the worker loads its own copy).
        device: Where the model runs ("cpu", "cuda:0", ...).
        image: The RGB uint8 image (None: read from ``path`` in the worker).
        path: The image file.
        title: A name for messages.
    """

    image_key: str
    model_id: str
    checkpoint: Path
    device: str = "cpu"
    image: np.ndarray | None = field(default=None, compare=False, repr=False)
    path: Path | None = None
    title: str = ""


@dataclass
class InsightJob:
    """One job: a kind, its target and parameters, and its cancel flag.

    Attributes:
        id: Unique within the controller.
        kind: One of :data:`KINDS`.
        target: The image and model.
        params: Hashable parameters, e.g. ``(("cls", 3),)`` or ``(("y", 10), ("x", 4))``.
        cancel: Set to stop the job at its next check (its result is then ignored).
    """

    id: int
    kind: str
    target: Target
    params: tuple[tuple[str, Any], ...] = ()
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def key(self) -> tuple:
        """``(kind, image key, model id, params)``: equal jobs give equal results."""
        return (self.kind, self.target.image_key, self.target.model_id, self.params)

    def param(self, name: str, default: Any = None) -> Any:
        """One parameter's value."""
        return dict(self.params).get(name, default)


@dataclass(frozen=True)
class Scale:
    """The analysed copy against the image: ``size`` and ``original`` are ``(H, W)``."""

    size: tuple[int, int]
    original: tuple[int, int]

    @property
    def downscaled(self) -> bool:
        """Whether the analysis ran on a smaller copy."""
        return self.size != self.original

    @property
    def factors(self) -> tuple[float, float]:
        """``(sy, sx)``: image pixels per analysed pixel."""
        return self.original[0] / self.size[0], self.original[1] / self.size[1]

    def to_analysis(self, y: int, x: int) -> tuple[int, int]:
        """The analysed pixel holding image pixel ``(y, x)``."""
        h, w = self.size
        return (min(h - 1, max(0, int(y * h / self.original[0]))),
                min(w - 1, max(0, int(x * w / self.original[1]))))

    def box_to_image(self, x0: float, y0: float, x1: float, y1: float
                     ) -> tuple[float, float, float, float]:
        """A half-open analysed box in image pixels."""
        sy, sx = self.factors
        return x0 * sx, y0 * sy, x1 * sx, y1 * sy

    def note(self) -> str:
        """What the user should know about the copy ('' when it is the image itself)."""
        if not self.downscaled:
            return ""
        return (f"Computed on a {self.size[1]}×{self.size[0]} copy of this "
                f"{self.original[1]}×{self.original[0]} image (at most {MAX_SIDE} px on its "
                "long side): maps and numbers are the model's on that copy.")


@dataclass
class ClassMaps:
    """One class's stream maps (``(h, w)`` float32 logits of the analysed copy).

    Attributes:
        cls: The class.
        terms: ``{variant: {stream: map}}`` for 16s and 8s.
        outputs: ``{variant: map}``: the model's output for 32s, 16s, 8s.
        deltas: ``{"pool4": 16s - 32s, "pool3": 8s - 16s}`` of this class.
    """

    cls: int
    terms: dict[str, dict[str, np.ndarray]]
    outputs: dict[str, np.ndarray]
    deltas: dict[str, np.ndarray]

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        maps = [m for t in self.terms.values() for m in t.values()]
        return sum(m.nbytes for m in [*maps, *self.outputs.values(), *self.deltas.values()])


@dataclass
class SkipSummary:
    """What one skip changed over the coarser output (all classes).

    Attributes:
        skip: "pool4" (16s over 32s) or "pool3" (8s over 16s).
        coarse: The variant before it.
        fine: The variant with it.
        changed: ``(h, w)`` bool: where the winning class changed.
        magnitude: ``(h, w)`` float32: the largest score change over classes.
        after: ``(h, w)`` uint8: the fine output's classes.
        fraction: The share of pixels whose class changed.
    """

    skip: str
    coarse: str
    fine: str
    changed: np.ndarray
    magnitude: np.ndarray
    after: np.ndarray
    fraction: float


@dataclass
class StreamsResult:
    """The stream decomposition of an image: skips, residuals and one class's maps.

    Attributes:
        scale: The analysed copy.
        skips: ``{"pool4": ..., "pool3": ...}``.
        residuals: ``{variant: max |sum of terms - output|}`` over the image.
        maps: The requested class's maps.
        thread: The thread that computed it.
    """

    scale: Scale
    skips: dict[str, SkipSummary]
    residuals: dict[str, float]
    maps: ClassMaps
    thread: str = ""


@dataclass
class PixelResult:
    """Every class's logit at one pixel split by stream (a core ``PixelBreakdown``).

    Attributes:
        y: Row in the analysed copy.
        x: Column in the analysed copy.
        terms: ``{variant: {stream: (C,) logits}}``.
        totals: ``{variant: (C,) logits}``: the model's output there.
        labels: ``{variant: winning class}``.
        thread: The thread that computed it.
    """

    y: int
    x: int
    terms: dict[str, dict[str, np.ndarray]]
    totals: dict[str, np.ndarray]
    labels: dict[str, int]
    thread: str = ""

    def residual(self, variant: str) -> float:
        """``max |sum of the terms - output|`` over the classes at this pixel."""
        total = sum(self.terms[variant].values())
        return float(np.abs(total - self.totals[variant]).max())


@dataclass(frozen=True)
class RegionInfo:
    """One "correct next" region (analysed-copy pixels).

    Attributes:
        box: ``(x0, y0, x1, y1)``, half-open.
        center: ``(x, y)``: where to look.
        mass: Its uncertainty mass (the ranking key).
        mean: Its mean uncertainty.
        area: Pixels.
        label: Its most frequent predicted class.
    """

    box: tuple[int, int, int, int]
    center: tuple[int, int]
    mass: float
    mean: float
    area: int
    label: int


@dataclass
class UncertaintyResult:
    """The uncertainty maps of an image, their regions and scores.

    Attributes:
        scale: The analysed copy.
        variant: The output the maps are about.
        labels: ``(h, w)`` uint8: that output's classes.
        maps: ``{source: (h, w) float32 in [0, 1]}``, "combined" included.
        regions: ``{source: ranked regions}``.
        scores: ``{source: image score}`` (mean uncertainty).
        seconds: Time per source.
        thread: The thread that computed it.
    """

    scale: Scale
    variant: str
    labels: np.ndarray
    maps: dict[str, np.ndarray]
    regions: dict[str, list[RegionInfo]]
    scores: dict[str, float]
    seconds: dict[str, float]
    thread: str = ""

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return self.labels.nbytes + sum(m.nbytes for m in self.maps.values())


@dataclass
class FcConvResult:
    """fc layers as convolutions on an image (``(C, rows, cols)`` float32 score maps).

    Attributes:
        scale: The analysed copy.
        dense: The fully convolutional map (None when the image is smaller than a window).
        slid: The classifier on every 7x7 pool5 block (the 224 windows, stride 32).
        max_difference: ``max |dense - slid|``.
        crops: The whole network on sampled 224 crops: ``{(i, j): (C,) scores}``.
        windows: How many windows lie wholly inside the image.
        crop_difference: ``max |dense - crop|`` over the sampled crops.
        crop_agreement: Their share whose winning class agrees with the dense map.
        width: The trunk's width (1.0 = VGG16).
        fc6: The shape of fc6's weight ``(out, in, 7, 7)``.
        why: Why the dense map and the windows agree (``core.insight.fc_conv.WHY``).
        window: The classifier's window (224).
        stride: The distance between windows (32).
        note: Why nothing was computed ('' when it was).
        thread: The thread that computed it.
    """

    scale: Scale
    dense: np.ndarray | None
    slid: np.ndarray | None
    max_difference: float = 0.0
    crops: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    windows: int = 0
    crop_difference: float | None = None
    crop_agreement: float | None = None
    width: float = 1.0
    fc6: tuple[int, ...] = ()
    why: str = ""
    window: int = 224
    stride: int = 32
    note: str = ""
    thread: str = ""


@dataclass
class GeometryResult:
    """The model's layers without weights (``core.insight.receptive`` reads their geometry).

    Attributes:
        model: An FCN on the meta device: no weights, safe to read from the GUI thread.
        thread: The thread that computed it.
    """

    model: object
    thread: str = ""


@dataclass
class ErfResult:
    """The effective receptive fields of one image pixel, computed on the image itself.

    Attributes:
        y: Row of the pixel.
        x: Column of the pixel.
        window: ``(x0, y0, x1, y1)``: the crop the gradients were computed on (it holds every
            variant's theoretical field and is aligned to the trunk's stride of 32, so the
            gradients are those of the whole image).
        maps: ``{variant: (h, w) float32}`` gradient magnitude over the window.
        boxes: ``{variant: (x0, y0, x1, y1)}`` theoretical fields (clipped to the image).
        sizes: ``{variant: (height, width)}`` of the unclipped theoretical fields.
        mass: ``{variant: (x0, y0, x1, y1)}``: where 95 % of the gradient mass lies.
        thread: The thread that computed it.
    """

    y: int
    x: int
    window: tuple[int, int, int, int]
    maps: dict[str, np.ndarray]
    boxes: dict[str, tuple[int, int, int, int]]
    sizes: dict[str, tuple[int, int]]
    mass: dict[str, tuple[int, int, int, int]]
    thread: str = ""


@dataclass
class ScoreResult:
    """An image's uncertainty scores (for "next image to correct").

    Attributes:
        image_key: The image.
        model_id: The model.
        scores: ``{source: mean uncertainty}``.
        uncertainty: The full result, when the image was analysed anyway.
        thread: The thread that computed it.
    """

    image_key: str
    model_id: str
    scores: dict[str, float]
    uncertainty: UncertaintyResult | None = None
    thread: str = ""
