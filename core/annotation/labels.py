"""An editable label mask with compact, self-contained undo records (napari-style, Qt-free).

:class:`LabelImage` holds an ``H x W`` uint8 mask (255 = void). Every change goes through
:meth:`LabelImage.paint` (or a :class:`Stroke`, or :meth:`LabelImage.replace`) and yields an
:class:`Edit` that stores only its bounding box, the footprint of the pixels it changed
(run-length encoded) and their old and new values, never a copy of the image. Undo and redo
restore those pixels byte for byte. Views subscribe to :attr:`LabelImage.on_change` and
repaint only the dirty rectangle they are given.

Coordinates: a :class:`BBox` is ``(x0, y0, x1, y1)`` with exclusive ends, in pixels
(``QRect(x0, y0, x1 - x0, y1 - y0)`` in Qt terms); arrays are indexed ``[y, x]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import EllipsisType
from typing import NamedTuple

import numpy as np

from core.data.palette import VOID
from core.errors import MaskError

__all__ = ["BBox", "Edit", "LabelImage", "Region", "Stroke"]


class BBox(NamedTuple):
    """A half-open pixel rectangle ``[x0, x1) x [y0, y1)``."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        """Columns covered (0 when empty)."""
        return max(0, self.x1 - self.x0)

    @property
    def height(self) -> int:
        """Rows covered (0 when empty)."""
        return max(0, self.y1 - self.y0)

    @property
    def area(self) -> int:
        """Pixels covered."""
        return self.width * self.height

    @property
    def empty(self) -> bool:
        """Whether the rectangle covers no pixel."""
        return self.width == 0 or self.height == 0

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices for indexing an ``H x W`` array."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def union(self, other: BBox) -> BBox:
        """The smallest rectangle holding both (an empty one is ignored)."""
        if self.empty:
            return other
        if other.empty:
            return self
        return BBox(min(self.x0, other.x0), min(self.y0, other.y0),
                    max(self.x1, other.x1), max(self.y1, other.y1))

    def intersect(self, other: BBox) -> BBox:
        """The overlap of both rectangles (possibly empty)."""
        x0, y0 = max(self.x0, other.x0), max(self.y0, other.y0)
        x1, y1 = min(self.x1, other.x1), min(self.y1, other.y1)
        return BBox(x0, y0, max(x0, x1), max(y0, y1))

    def xywh(self) -> tuple[int, int, int, int]:
        """``(x, y, width, height)``, the QRect form."""
        return self.x0, self.y0, self.width, self.height


@dataclass(frozen=True, eq=False)
class Region:
    """A footprint: a boolean ``mask`` over the pixels of ``bbox`` (what the tools return)."""

    bbox: BBox
    mask: np.ndarray

    def __post_init__(self) -> None:
        if self.mask.dtype != np.bool_ or self.mask.shape != (self.bbox.height, self.bbox.width):
            raise ValueError(
                f"region mask must be bool of shape {(self.bbox.height, self.bbox.width)}, "
                f"got {self.mask.dtype} {self.mask.shape}"
            )

    @classmethod
    def empty(cls) -> Region:
        """A region with no pixel."""
        return cls(BBox(0, 0, 0, 0), np.zeros((0, 0), bool))

    @property
    def count(self) -> int:
        """Number of pixels in the footprint."""
        return int(np.count_nonzero(self.mask))

    def to_full(self, shape: tuple[int, int]) -> np.ndarray:
        """The footprint as a full ``H x W`` boolean array (for tests and small images)."""
        out = np.zeros(shape, bool)
        out[self.bbox.slices] = self.mask
        return out


def _encode_runs(mask: np.ndarray) -> np.ndarray:
    """Run-length encode a boolean array (flattened, C order) as ``(n, 2)`` start/end pairs."""
    flat = mask.reshape(-1).view(np.int8)
    d = np.diff(flat, prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    dtype = np.uint16 if mask.size < 2**16 else np.uint32
    return np.stack([starts, ends], axis=1).astype(dtype)


def _decode_runs(runs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`_encode_runs`."""
    size = shape[0] * shape[1]
    acc = np.zeros(size + 1, np.int8)
    acc[runs[:, 0].astype(np.intp)] += 1
    acc[runs[:, 1].astype(np.intp)] -= 1
    return (np.cumsum(acc[:-1], dtype=np.int8) > 0).reshape(shape)


def _pack_values(values: np.ndarray) -> np.ndarray:
    """Values at the footprint pixels; a single element when they are all equal."""
    values = np.ascontiguousarray(values, dtype=np.uint8)
    if values.size and (values == values[0]).all():
        return values[:1].copy()
    return values


@dataclass(frozen=True, eq=False)
class Edit:
    """One undoable change: the pixels of ``bbox`` it changed, with old and new values.

    Self-contained (it does not reference its image), so a Qt ``QUndoCommand`` can wrap it:
    ``redo()`` calls :meth:`LabelImage.redo`, ``undo()`` :meth:`LabelImage.undo`.

    Attributes:
        bbox: Rectangle holding every changed pixel.
        runs: Run-length encoded footprint within ``bbox`` (flattened C-order start/end).
        old: uint8 values before the edit, in raster order (one element if all equal).
        new: uint8 values after the edit, likewise.
        count: Number of changed pixels.
        label: What made it ("brush", "fill", "polygon"...), for the undo menu.
    """

    bbox: BBox
    runs: np.ndarray
    old: np.ndarray
    new: np.ndarray
    count: int
    label: str = "edit"

    @classmethod
    def from_arrays(cls, bbox: BBox, footprint: np.ndarray, old: np.ndarray, new: np.ndarray,
                    label: str = "edit") -> Edit:
        """Build an edit from a boolean footprint and the values at its pixels."""
        return cls(bbox, _encode_runs(footprint), _pack_values(old), _pack_values(new),
                   int(old.size), label)

    def footprint(self) -> np.ndarray:
        """The changed pixels as a boolean ``bbox.height x bbox.width`` array."""
        return _decode_runs(self.runs, (self.bbox.height, self.bbox.width))

    @property
    def nbytes(self) -> int:
        """Memory held by the edit's arrays (what the undo history budget counts)."""
        return int(self.runs.nbytes + self.old.nbytes + self.new.nbytes) + 64


ChangeCallback = Callable[[BBox], None]


class LabelImage:
    """An ``H x W`` uint8 label mask that records every change as an :class:`Edit`.

    Attributes:
        on_change: Callbacks called with the dirty :class:`BBox` after every change.
        preserve_label: When set, painting changes only pixels currently of this label
            ("paint only over one class"); None paints over everything.
        num_classes: Valid labels are ``0 .. num_classes - 1`` and 255 (None: any uint8).
        revision: Incremented by every change (edit, undo, redo).
    """

    def __init__(self, mask: np.ndarray, *, num_classes: int | None = None,
                 keep_baseline: bool = True, copy: bool = True) -> None:
        """Wrap ``mask`` (copied unless ``copy=False``).

        Args:
            mask: ``H x W`` integer labels in 0..255.
            num_classes: When given, painted values are checked against it.
            keep_baseline: Keep a copy of the starting mask, so that :meth:`corrected`
                can tell which pixels the user changed.
            copy: Copy ``mask`` (else it is edited in place; it must be C-contiguous uint8).

        Raises:
            MaskError: ``mask`` is not 2-D or has values outside 0..255.
        """
        arr = np.asarray(mask)
        if arr.ndim != 2:
            raise MaskError(f"A label image must be H x W, got shape {arr.shape}")
        if arr.dtype != np.uint8:
            if arr.dtype != np.bool_ and arr.size and (arr.min() < 0 or arr.max() > 255):
                raise MaskError("Label values must be in 0..255")
            arr = arr.astype(np.uint8)
        elif copy or not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr).copy() if copy else np.ascontiguousarray(arr)
        self._data = arr
        self.num_classes = num_classes
        self.preserve_label: int | None = None
        self.on_change: list[ChangeCallback] = []
        self.revision = 0
        self._saved_revision = 0
        self._baseline = arr.copy() if keep_baseline else None

    @classmethod
    def blank(cls, height: int, width: int, value: int = 0, **kwargs) -> LabelImage:
        """A mask filled with ``value`` (0: background, 255: void)."""
        return cls(np.full((height, width), value, np.uint8), copy=False, **kwargs)

    # ------------------------------------------------------------------ state

    @property
    def array(self) -> np.ndarray:
        """The mask itself (read it, draw it; change it only through this class)."""
        return self._data

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self._data.shape  # type: ignore[return-value]

    @property
    def bounds(self) -> BBox:
        """The whole image as a :class:`BBox`."""
        return BBox(0, 0, self._data.shape[1], self._data.shape[0])

    @property
    def dirty(self) -> bool:
        """Whether anything changed since the last :meth:`mark_saved`."""
        return self.revision != self._saved_revision

    def mark_saved(self) -> None:
        """Record that the current state is saved (clears :attr:`dirty`)."""
        self._saved_revision = self.revision

    def corrected(self) -> np.ndarray:
        """Pixels whose label differs from the starting mask (all False without a baseline)."""
        if self._baseline is None:
            return np.zeros(self.shape, bool)
        return self._data != self._baseline

    def set_baseline(self, mask: np.ndarray | None = None) -> None:
        """Make ``mask`` (default: the current mask) the reference for :meth:`corrected`."""
        self._baseline = (self._data if mask is None else np.asarray(mask, np.uint8)).copy()

    def check_value(self, value: int) -> int:
        """Validate a label to paint; return it as int.

        Raises:
            MaskError: Outside 0..num_classes-1 and not 255 (void).
        """
        value = int(value)
        limit = self.num_classes if self.num_classes is not None else 256
        if not (0 <= value < limit or value == VOID):
            raise MaskError(f"Cannot paint label {value}: labels are 0..{limit - 1} and {VOID}")
        return value

    def pick(self, x: int, y: int) -> int:
        """The label at pixel ``(x, y)`` (the eyedropper)."""
        return int(self._data[int(y), int(x)])

    def _notify(self, bbox: BBox) -> None:
        self.revision += 1
        for callback in list(self.on_change):
            callback(bbox)

    # ------------------------------------------------------------------ editing

    def _apply_region(self, region: Region, value: int, preserve: int | None
                      ) -> tuple[BBox, np.ndarray, np.ndarray] | None:
        """Paint ``region`` with ``value``; return (bbox, footprint, old values) or None."""
        bbox = region.bbox.intersect(self.bounds)
        if bbox.empty:
            return None
        mask = region.mask
        if bbox != region.bbox:
            rb = region.bbox
            mask = mask[bbox.y0 - rb.y0 : bbox.y1 - rb.y0, bbox.x0 - rb.x0 : bbox.x1 - rb.x0]
        view = self._data[bbox.slices]
        sel = mask & (view != value)
        if preserve is not None:
            sel &= view == preserve
        if not sel.any():
            return None
        # shrink to the changed pixels' own box, so the edit is as small as possible
        rows = np.flatnonzero(sel.any(axis=1))
        cols = np.flatnonzero(sel.any(axis=0))
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        sel = sel[r0:r1, c0:c1]
        bbox = BBox(bbox.x0 + c0, bbox.y0 + r0, bbox.x0 + c1, bbox.y0 + r1)
        view = self._data[bbox.slices]
        old = view[sel]
        view[sel] = value
        return bbox, sel, old

    def paint(self, region: Region, value: int, *, label: str = "paint",
              preserve_label: int | EllipsisType | None = ...) -> Edit | None:
        """Set the pixels of ``region`` to ``value``; return the edit (None if nothing changed).

        Args:
            region: Footprint from :mod:`core.annotation.tools` (clipped to the image).
            value: Label to paint (255 = void, 0 = background for an eraser).
            label: Name of the edit.
            preserve_label: Overrides :attr:`preserve_label` for this call.
        """
        value = self.check_value(value)
        preserve = self.preserve_label if preserve_label is ... else preserve_label
        done = self._apply_region(region, value, preserve)  # type: ignore[arg-type]
        if done is None:
            return None
        bbox, sel, old = done
        edit = Edit.from_arrays(bbox, sel, old, np.full(old.size, value, np.uint8), label)
        self._notify(bbox)
        return edit

    def replace(self, mask: np.ndarray, *, label: str = "replace") -> Edit | None:
        """Replace the whole mask (e.g. start from a prediction) as one undoable edit."""
        mask = np.asarray(mask)
        if mask.shape != self.shape:
            raise MaskError(f"Replacement mask is {mask.shape}, the image is {self.shape}")
        mask = mask.astype(np.uint8, copy=False)
        sel = mask != self._data
        if not sel.any():
            return None
        rows = np.flatnonzero(sel.any(axis=1))
        cols = np.flatnonzero(sel.any(axis=0))
        bbox = BBox(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
        sel = sel[bbox.slices]
        view = self._data[bbox.slices]
        old = view[sel]
        new = mask[bbox.slices][sel]
        view[sel] = new
        self._notify(bbox)
        return Edit.from_arrays(bbox, sel, old, new, label)

    def begin_stroke(self, value: int, *, label: str = "brush",
                     preserve_label: int | EllipsisType | None = ...) -> Stroke:
        """Start a stroke: segments paint at once and finish as a single :class:`Edit`."""
        preserve = self.preserve_label if preserve_label is ... else preserve_label
        return Stroke(self, self.check_value(value), label, preserve)  # type: ignore[arg-type]

    def _set(self, edit: Edit, values: np.ndarray) -> None:
        view = self._data[edit.bbox.slices]
        view[edit.footprint()] = values
        self._notify(edit.bbox)

    def undo(self, edit: Edit) -> None:
        """Revert ``edit`` (which must be the latest edit not yet undone)."""
        self._set(edit, edit.old)

    def redo(self, edit: Edit) -> None:
        """Re-apply an undone ``edit`` (idempotent: on an applied edit it changes nothing,
        so a QUndoCommand may call it when pushed)."""
        self._set(edit, edit.new)


class Stroke:
    """A brush or eraser stroke in progress; one :class:`Edit` when finished.

    Each :meth:`add` paints at once (and notifies the views with its small dirty rectangle);
    :meth:`finish` merges the segments into one edit for the undo stack. Call
    :meth:`cancel` to revert a stroke that is not finished.
    """

    def __init__(self, image: LabelImage, value: int, label: str, preserve: int | None
                 ) -> None:
        """Use :meth:`LabelImage.begin_stroke`."""
        self.image = image
        self.value = value
        self.label = label
        self.preserve = preserve
        self._parts: list[tuple[BBox, np.ndarray, np.ndarray]] = []
        self.bbox = BBox(0, 0, 0, 0)
        self.finished = False

    def add(self, region: Region) -> BBox | None:
        """Paint one segment's footprint; return its dirty rectangle (None if no change)."""
        if self.finished:
            raise RuntimeError("this stroke is finished")
        done = self.image._apply_region(region, self.value, self.preserve)
        if done is None:
            return None
        self._parts.append(done)
        self.bbox = self.bbox.union(done[0])
        self.image._notify(done[0])
        return done[0]

    def finish(self) -> Edit | None:
        """End the stroke; return its single edit (None if it changed nothing)."""
        self.finished = True
        parts, self._parts = self._parts, []
        if not parts:
            return None
        if len(parts) == 1:
            bbox, sel, old = parts[0]
            return Edit.from_arrays(bbox, sel, old, np.full(old.size, self.value, np.uint8),
                                    self.label)
        bbox = self.bbox
        touched = np.zeros((bbox.height, bbox.width), bool)
        old_full = np.zeros((bbox.height, bbox.width), np.uint8)
        for b, sel, old in reversed(parts):  # a pixel keeps its value before the stroke
            sl = (slice(b.y0 - bbox.y0, b.y1 - bbox.y0), slice(b.x0 - bbox.x0, b.x1 - bbox.x0))
            old_full[sl][sel] = old
            touched[sl] |= sel
        old = old_full[touched]
        return Edit.from_arrays(bbox, touched, old, np.full(old.size, self.value, np.uint8),
                                self.label)

    def cancel(self) -> None:
        """Revert every segment painted so far."""
        self.finished = True
        for b, sel, old in reversed(self._parts):
            self.image._data[b.slices][sel] = old
            self.image._notify(b)
        self._parts = []
