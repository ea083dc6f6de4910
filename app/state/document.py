"""ImageDocument: one open image, its reference mask and the predictions made for it.

Views never own data: they subscribe to a document's signals. Predictions are kept per
model id, so switching models and back costs nothing. A prediction still landing (its
preview, then its tiles) is a :class:`~app.state.partial.PartialResult` until it is complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.common.render import ImageBuffer, rgb_image
from app.state.partial import Box, PartialResult


class ImageDocument(QObject):
    """An RGB image with its path, reference mask and predictions (keyed by model id).

    Attributes:
        view_region: The part of the image in the viewer, ``(top, left, bottom, right)``
            (None: not shown yet): a prediction finishes it first.

    Signals:
        predictionChanged(str): a prediction for that model id was stored.
        partialChanged(str, object): the prediction of that model id still landing
            changed: a list of the boxes ``(top, left, bottom, right)`` that landed, or None
            when more changed (the preview arrived, the prediction stopped or was dropped).
        referenceChanged(): the reference mask was set, replaced or removed.
    """

    predictionChanged = Signal(str)
    partialChanged = Signal(str, object)
    referenceChanged = Signal()

    def __init__(
        self,
        image: np.ndarray,
        path: Path | None = None,
        reference: np.ndarray | None = None,
        reference_path: Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        """Hold ``image`` (``H x W x 3`` uint8 RGB)."""
        super().__init__(parent)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"ImageDocument needs H x W x 3 uint8, got {image.shape} {image.dtype}"
            )
        self.image = image
        self.path = path
        self.reference: np.ndarray | None = None
        self.reference_path: Path | None = None
        self.predictions: dict[str, Any] = {}
        self.partials: dict[str, PartialResult] = {}
        self.derived: dict[Any, Any] = {}
        self.view_region: Box | None = None
        self._display: ImageBuffer | None = None
        self._source: Any | None = None
        if reference is not None:
            self.set_reference(reference, reference_path)

    @classmethod
    def load(cls, path: str | Path, mask: str | Path | None = None) -> tuple[ImageDocument, str]:
        """Read an image (and its mask); return the document and a warning ('' if none).

        Raises:
            core.errors.ImageReadError: The image cannot be read.
        """
        from core.data.imageio import read_image, read_mask
        from core.errors import FCNStudioError

        path = Path(path)
        doc = cls(read_image(path), path)
        warning = ""
        if mask is not None:
            try:
                doc.set_reference(read_mask(mask), Path(mask))
            except (FCNStudioError, ValueError) as exc:
                warning = f"Reference mask not used: {exc}"
        return doc, warning

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(self.image.shape[1])

    @property
    def title(self) -> str:
        """File name, or 'untitled'."""
        return self.path.name if self.path else "untitled"

    def display_image(self) -> ImageBuffer:
        """The image as one QImage, converted once (4 bytes per pixel: the views draw
        :meth:`image_tiles` instead)."""
        if self._display is None:
            self._display = rgb_image(self.image)
        return self._display

    def image_tiles(self, make: Any) -> Any:
        """The image's tile source, made once by ``make(image)`` (the canvas's RGB source:
        state does not import the canvas) and shared by every view."""
        if self._source is None:
            self._source = make(self.image)
        return self._source

    def set_reference(self, mask: np.ndarray | None, path: Path | None = None) -> None:
        """Set (or with None remove) the reference mask (``H x W`` uint8 labels, 255 void).

        Raises:
            ValueError: The mask's size differs from the image's.
        """
        if mask is not None:
            mask = np.ascontiguousarray(mask, dtype=np.uint8)
            if mask.shape != self.image.shape[:2]:
                raise ValueError(
                    f"the mask {path or ''} is {mask.shape[1]}x{mask.shape[0]} pixels, the image "
                    f"{self.title} is {self.width}x{self.height}"
                )
        self.reference = mask
        self.reference_path = path if mask is not None else None
        self._drop_derived(lambda key: key[0] in ("reference", "stats"))
        self.referenceChanged.emit()

    def prediction(self, model_id: str | None) -> Any | None:
        """The prediction (core.inference.Prediction) made by ``model_id``, or None."""
        return self.predictions.get(model_id) if model_id else None

    def output(self, model_id: str | None, variant: str) -> Any | None:
        """One variant's output (core.inference.VariantOutput), or None."""
        pred = self.prediction(model_id)
        return None if pred is None else pred.outputs.get(variant)

    def set_prediction(
        self, model_id: str, prediction: Any, derived: dict[tuple, Any] | None = None
    ) -> None:
        """Store a prediction of ``model_id`` and values derived from it (replacing older
        ones and the partial result it completes)."""
        self.predictions[model_id] = prediction
        self.partials.pop(model_id, None)
        self._drop_derived(lambda key: _mentions(key, model_id))
        self.derived.update(derived or {})
        self.predictionChanged.emit(model_id)

    # ------------------------------------------------------------------ landing results
    def partial(self, model_id: str | None) -> PartialResult | None:
        """The prediction of ``model_id`` still landing (or stopped part way), or None."""
        return self.partials.get(model_id) if model_id else None

    def set_preview(self, model_id: str, preview: Any) -> None:
        """A new prediction of ``model_id`` starts with ``preview`` (of a downscaled copy):
        it replaces what an earlier one left."""
        self.partials[model_id] = PartialResult(self.image.shape[:2], preview=preview)
        self._drop_derived(lambda key: key[:1] == ("partial",) and _mentions(key, model_id))
        self.partialChanged.emit(model_id, None)

    def add_tiles(self, model_id: str, prediction: Any, boxes: list[Box]) -> None:
        """Tiles ``boxes`` of ``prediction`` (by ``model_id``, streaming) landed."""
        part = self.partials.get(model_id)
        fresh = part is None or part.stopped or (
            part.prediction is not None and part.prediction is not prediction)
        if fresh:
            preview = part.preview if part is not None and not part.stopped else None
            part = self.partials[model_id] = PartialResult(self.image.shape[:2],
                                                           preview=preview)
            self._drop_derived(lambda key: key[:1] == ("partial",) and _mentions(key, model_id))
        part.add(prediction, boxes)
        self.partialChanged.emit(model_id, None if fresh else list(boxes))

    def stop_partial(self, model_id: str) -> None:
        """The prediction of ``model_id`` stopped (cancelled or failed): keep what landed
        (nothing landed: forget the preview too)."""
        part = self.partials.get(model_id)
        if part is None:
            return
        if part.prediction is None:
            del self.partials[model_id]
        else:
            part.stopped = True
        self.partialChanged.emit(model_id, None)

    def cached(self, key: tuple, compute: Any) -> Any:
        """Memoize ``compute()`` under ``key`` (``(kind, model_id, ...)``) until inputs change."""
        if key not in self.derived:
            self.derived[key] = compute()
        return self.derived[key]

    def _drop_derived(self, match: Any) -> None:
        for key in [k for k in self.derived if match(k)]:
            del self.derived[key]

    def nbytes(self) -> int:
        """Approximate memory held (image, mask, predictions, derived display buffers)."""
        total = self.image.nbytes + (0 if self.reference is None else self.reference.nbytes)
        total += int(getattr(self._source, "pyramid_bytes", 0))
        for pred in (*self.predictions.values(), *self.partials.values()):
            total += int(getattr(pred, "nbytes", 0))
        for value in self.derived.values():  # arrays and the arrays behind image buffers
            arr = value if isinstance(value, np.ndarray) else getattr(value, "array", None)
            total += int(getattr(arr, "nbytes", 0))
        return total


def _mentions(key: object, model_id: str) -> bool:
    """Whether a cache key names ``model_id`` anywhere (keys of values derived from several
    models, e.g. change marks or a model set's disagreement, nest their ids)."""
    if isinstance(key, tuple):
        return any(_mentions(k, model_id) for k in key)
    return key == model_id
