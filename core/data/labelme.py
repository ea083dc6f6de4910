"""Import labelme JSON annotations as label masks, and ``labelme2voc`` like labelme's own.

Rasterization is a faithful port of ``labelme.utils.shape_to_mask`` and ``shapes_to_label``
(labelme 6.3, MIT license, (c) Kentaro Wada), drawing with PIL exactly as labelme does, so
masks are pixel-identical to what labelme's ``examples/semantic_segmentation/labelme2voc.py``
writes for the same files:

* polygon (and a missing shape type), oriented_rectangle: ``ImageDraw.polygon``, outline
  and fill;
* rectangle: ``ImageDraw.rectangle`` between the two corners;
* circle: ``ImageDraw.ellipse`` of radius = distance from the centre to the second point;
* line, linestrip: ``ImageDraw.line`` of width 10;
* point: ``ImageDraw.ellipse`` of radius 5;
* mask: the base64 PNG placed at ``[y1:y2 + 1, x1:x2 + 1]`` of its two (truncated) points.

Shapes are painted in file order (later shapes win). Labels map to values through a fixed
label list: ``__ignore__`` is 255 (void), the others their index in the list. An unknown
label is an :class:`UnknownLabelError` naming the label, the file and the known labels;
labels are never renumbered. labelme cannot rasterize ``points`` shapes either, so they
are refused with a clear error.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PureWindowsPath

import numpy as np
import PIL.Image
import PIL.ImageDraw

from core.data.imageio import read_image
from core.data.palette import VOID, read_class_names
from core.errors import DatasetError, ImageReadError
from core.fileio import is_regular_file
from core.jsonio import read_json
from core.limits import decode_pil, open_image_header

__all__ = [
    "IGNORE_LABEL",
    "LabelMap",
    "LabelmeError",
    "LabelmeFile",
    "LabelmeShape",
    "UnknownLabelError",
    "import_labelme",
    "read_labelme",
    "read_labels",
    "shape_to_mask",
    "shapes_to_label",
]

IGNORE_LABEL = "__ignore__"
BACKGROUND_LABEL = "_background_"
SHAPE_TYPES: tuple[str, ...] = (
    "polygon", "rectangle", "circle", "line", "linestrip", "point", "oriented_rectangle",
    "mask",
)
LINE_WIDTH = 10
POINT_SIZE = 5


class LabelmeError(DatasetError):
    """A labelme file or label list is malformed."""


class UnknownLabelError(LabelmeError):
    """A shape's label is not in the project's label list.

    Attributes:
        label: The unknown label.
        file: The labelme file it was found in.
        known: The labels that are known.
    """

    def __init__(self, label: str, file: str | os.PathLike[str], known: Sequence[str]) -> None:
        """Build the message from the label, the file and the known labels."""
        self.label, self.file, self.known = label, str(file), list(known)
        super().__init__(
            f"{file}: unknown label {label!r}; known labels are "
            f"{', '.join(repr(k) for k in self.known)}. Add it to the label list (labels are "
            "never renumbered) or relabel the shape"
        )


# --------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class LabelMap:
    """A fixed label list: names to mask values (``__ignore__`` is 255).

    Attributes:
        class_names: Class names in value order (value = index), background first.
        ignore: Names that map to the void value 255.
        aliases: Extra names and the known label each stands for (what the user chose
            when prompted about an unknown label; see :meth:`with_alias`).
    """

    class_names: tuple[str, ...]
    ignore: tuple[str, ...] = (IGNORE_LABEL,)
    aliases: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.class_names:
            raise LabelmeError("The label list is empty")
        if len(self.class_names) > VOID:
            raise LabelmeError(f"At most {VOID} classes, got {len(self.class_names)}")
        dupes = sorted({n for n in self.class_names if self.class_names.count(n) > 1})
        if dupes:
            raise LabelmeError(f"The label list repeats {', '.join(dupes)}")

    @classmethod
    def from_names(cls, names: Sequence[str]) -> LabelMap:
        """From a list that may start with ``__ignore__`` (labelme's labels.txt)."""
        names = [str(n).strip() for n in names]
        if names and names[0] == IGNORE_LABEL:
            names = names[1:]
        return cls(tuple(names))

    def with_alias(self, label: str, target: str) -> LabelMap:
        """A copy that maps ``label`` to the known label ``target``.

        Raises:
            UnknownLabelError: ``target`` is not known.
        """
        if target not in self.ignore and target not in self.class_names:
            raise UnknownLabelError(target, "the alias target", [*self.ignore,
                                                                 *self.class_names])
        return replace(self, aliases={**self.aliases, label: target})

    @property
    def known(self) -> list[str]:
        """Every accepted label (ignore names first, as in labels.txt)."""
        return [*self.ignore, *self.class_names]

    def value(self, label: str, source: str | os.PathLike[str] = "labelme file") -> int:
        """The mask value of ``label``.

        Raises:
            UnknownLabelError: The label is not in the list.
        """
        label = self.aliases.get(label, label)  # one level: targets are never aliases
        if label in self.ignore:
            return VOID
        try:
            return self.class_names.index(label)
        except ValueError:
            raise UnknownLabelError(label, source, self.known) from None


def read_labels(spec: str | os.PathLike[str]) -> LabelMap:
    """Read labelme's ``--labels``: a labels.txt file or comma-separated names.

    As in labelme's labelme2voc, line ``i`` of the file is class ``i - 1`` when the first
    line is ``__ignore__`` (value 255), so ``_background_`` (usually the next line) is 0.
    Blank lines at the end are dropped; a blank line in the middle is an error (labelme
    would turn it into a class named "" and shift the ids after it).

    Raises:
        LabelmeError: The file cannot be read, is empty, has inner blank lines or repeats.
    """
    path = Path(spec)
    if is_regular_file(path):
        names = read_class_names(path, error=LabelmeError, numbered=True)
    else:
        if os.sep in str(spec) or str(spec).endswith(".txt"):
            raise LabelmeError(f"Labels file {spec} does not exist")
        names = [n.strip() for n in str(spec).split(",")]
    return LabelMap.from_names(names)


# --------------------------------------------------------------------------- rasterization


def _check_coordinates(xy: Sequence[tuple[float, ...]], img_shape: tuple[int, ...]) -> None:
    """Points must be finite and at most one image size outside the image.

    Drawing time grows with the shape's extent (a circle of radius 1e6 takes PIL half a
    minute), and nothing farther out can change the mask's pixels of a polygon or line
    in a way a real annotation needs.
    """
    h, w = int(img_shape[0]), int(img_shape[1])
    reach = max(h, w, 1)
    for point in xy:
        if len(point) != 2:
            raise LabelmeError(f"a point must be [x, y], got {list(point)!r}")
        for v, size, axis in ((point[0], w, "x"), (point[1], h, "y")):
            try:
                ok = math.isfinite(v) and -reach <= v <= size + reach
            except (TypeError, OverflowError):
                ok = False
            if not ok:
                raise LabelmeError(
                    f"coordinate {axis}={v!r} is not finite or far outside the {w}x{h} image"
                )


def shape_to_mask(img_shape: tuple[int, ...], points: Sequence[Sequence[float]],
                  shape_type: str | None = None, line_width: int = LINE_WIDTH,
                  point_size: int = POINT_SIZE) -> np.ndarray:
    """Rasterize one shape as labelme's ``utils.shape_to_mask`` does; bool ``H x W``.

    Raises:
        LabelmeError: Wrong number of points for the shape type, or an unknown type.
    """
    mask = PIL.Image.fromarray(np.zeros(img_shape[:2], dtype=np.uint8))
    draw = PIL.ImageDraw.Draw(mask)
    xy = [tuple(point) for point in points]
    _check_coordinates(xy, img_shape)

    def need(n: int, more: bool = False) -> None:
        if (len(xy) <= n) if more else (len(xy) != n):
            what = f"more than {n}" if more else str(n)
            raise LabelmeError(f"a {shape_type} shape needs {what} points, got {len(xy)}")

    if shape_type == "circle":
        need(2)
        (cx, cy), (px, py) = xy
        d = math.sqrt((cx - px) ** 2 + (cy - py) ** 2)
        draw.ellipse(((cx - d, cy - d), (cx + d, cy + d)), outline=1, fill=1)
    elif shape_type == "rectangle":
        need(2)
        (x0, y0), (x1, y1) = xy
        draw.rectangle(((min(x0, x1), min(y0, y1)), (max(x0, x1), max(y0, y1))),
                       outline=1, fill=1)
    elif shape_type == "line":
        need(2)
        draw.line(xy=xy, fill=1, width=line_width)
    elif shape_type == "linestrip":
        draw.line(xy=xy, fill=1, width=line_width)
    elif shape_type == "point":
        need(1)
        cx, cy = xy[0]
        r = point_size
        draw.ellipse(((cx - r, cy - r), (cx + r, cy + r)), outline=1, fill=1)
    elif shape_type == "oriented_rectangle":
        need(4)
        draw.polygon(xy=xy, outline=1, fill=1)
    elif shape_type in (None, "polygon"):
        need(2, more=True)
        draw.polygon(xy=xy, outline=1, fill=1)
    else:
        raise LabelmeError(
            f"shape type {shape_type!r} cannot be rasterized (labelme's labelme2voc refuses "
            f"it too); supported: {', '.join(SHAPE_TYPES)}"
        )
    return np.array(mask, dtype=bool)


@dataclass
class LabelmeShape:
    """One shape of a labelme file."""

    label: str
    points: list[list[float]]
    shape_type: str | None = "polygon"
    group_id: int | None = None
    mask: np.ndarray | None = None


def shapes_to_label(img_shape: tuple[int, ...], shapes: Sequence[LabelmeShape],
                    labels: LabelMap, source: str | os.PathLike[str] = "labelme file"
                    ) -> np.ndarray:
    """Paint ``shapes`` in order into a uint8 ``H x W`` mask (0 where no shape is).

    Raises:
        UnknownLabelError: A shape's label is not in ``labels`` (checked before painting).
        LabelmeError: A shape cannot be rasterized.
    """
    values = [labels.value(s.label, source) for s in shapes]
    cls = np.zeros(img_shape[:2], dtype=np.uint8)
    for i, (shape, value) in enumerate(zip(shapes, values, strict=True)):
        try:
            if shape.shape_type == "mask":
                if shape.mask is None:
                    raise LabelmeError("a mask shape has no mask data")
                mask = np.zeros(img_shape[:2], dtype=bool)
                (x1, y1), (x2, y2) = np.asarray(shape.points).astype(int)
                mask[y1 : y2 + 1, x1 : x2 + 1] = shape.mask
            else:
                mask = shape_to_mask(img_shape[:2], shape.points, shape.shape_type)
        except (ValueError, TypeError) as exc:
            raise LabelmeError(f"{source}: shape {i} ({shape.label!r}): {exc}") from exc
        except LabelmeError as exc:
            raise LabelmeError(f"{source}: shape {i} ({shape.label!r}): {exc}") from exc
        cls[mask] = value
    return cls


# --------------------------------------------------------------------------- files


@dataclass
class LabelmeFile:
    """A parsed labelme JSON file with its image."""

    path: Path
    image_path: str
    image: np.ndarray
    shapes: list[LabelmeShape] = field(default_factory=list)
    version: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the image."""
        return self.image.shape[0], self.image.shape[1]


def _decode_image_data(data: bytes, source: Path) -> np.ndarray:
    """``imageData`` as RGB uint8, as labelme reads it (PIL, no EXIF rotation)."""
    pil = open_image_header(data, source, "the imageData of", LabelmeError)
    if pil is None:
        raise LabelmeError(f"{source}: imageData is not a readable image")
    decode_pil(pil, source, "the imageData of", LabelmeError)
    try:
        if pil.mode in ("RGBA", "LA", "PA") or (pil.mode == "P" and "transparency" in pil.info):
            rgba = np.asarray(pil.convert("RGBA")).astype(np.float32)
            alpha = rgba[..., 3:] / 255.0
            rgb = rgba[..., :3] * alpha + 255.0 * (1 - alpha)  # over white, as read_image
            return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.asarray(pil.convert("RGB")))
    except (OSError, ValueError, SyntaxError, MemoryError) as exc:
        raise LabelmeError(f"{source}: imageData is not a readable image ({exc})") from exc


def _b64(text: object, what: str, source: Path) -> bytes:
    if not isinstance(text, str):
        raise LabelmeError(f"{source}: {what} must be a base64 string")
    try:
        return base64.b64decode(text)
    except (binascii.Error, ValueError) as exc:
        raise LabelmeError(f"{source}: {what} is not valid base64 ({exc})") from exc


def _parse_shape(d: object, i: int, source: Path) -> LabelmeShape:
    if not isinstance(d, dict):
        raise LabelmeError(f"{source}: shape {i} is not an object")
    label = d.get("label")
    if not isinstance(label, str):
        raise LabelmeError(f"{source}: shape {i} has no label (a string)")
    points = d.get("points")
    if not (isinstance(points, list) and points and all(
            isinstance(p, list) and len(p) == 2 and
            all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)
            for p in points)):
        raise LabelmeError(f"{source}: shape {i} ({label!r}) needs points as a list of [x, y]")
    try:
        xy = [[float(x), float(y)] for x, y in points]
    except OverflowError:
        xy = []
    if not xy or not all(math.isfinite(v) for p in xy for v in p):
        raise LabelmeError(f"{source}: shape {i} ({label!r}) has a coordinate that is not a "
                           "finite number (NaN, infinite or too large)")
    shape_type = d.get("shape_type")
    if shape_type is not None and not isinstance(shape_type, str):
        raise LabelmeError(f"{source}: shape {i} ({label!r}) has a non-string shape_type")
    mask = None
    if d.get("mask") is not None:
        data = _b64(d["mask"], f"the mask of shape {i} ({label!r})", source)
        pil = open_image_header(data, source, f"the mask of shape {i} in", LabelmeError)
        if pil is None:
            raise LabelmeError(f"{source}: the mask of shape {i} is not a PNG")
        decode_pil(pil, source, f"the mask of shape {i} in", LabelmeError)
        try:
            mask = np.array(pil).astype(bool)
        except (OSError, ValueError, SyntaxError, MemoryError) as exc:
            raise LabelmeError(f"{source}: the mask of shape {i} is not a PNG ({exc})") from exc
        if mask.ndim != 2:
            raise LabelmeError(f"{source}: the mask of shape {i} is not a one-channel image")
    group_id = d.get("group_id")
    return LabelmeShape(label, xy, shape_type,
                        group_id if isinstance(group_id, int) else None, mask)


def read_labelme(path: str | os.PathLike[str]) -> LabelmeFile:
    """Read a labelme JSON file and its image (``imageData``, else ``imagePath``).

    Raises:
        LabelmeError: Not a labelme file, a malformed shape, a missing image, or an image
            whose size differs from ``imageHeight`` / ``imageWidth``.
    """
    path = Path(path)
    d = read_json(path, LabelmeError, "labelme file")
    if not isinstance(d, dict) or not isinstance(d.get("shapes"), list):
        raise LabelmeError(f"{path} is not a labelme file: no 'shapes' list")
    image_path = PureWindowsPath(str(d.get("imagePath") or "")).as_posix()
    if d.get("imageData"):
        image = _decode_image_data(_b64(d["imageData"], "imageData", path), path)
    else:
        if not image_path:
            raise LabelmeError(f"{path} has neither imageData nor imagePath")
        try:
            image = read_image(path.parent / image_path)
        except ImageReadError as exc:
            raise LabelmeError(f"{path}: its image cannot be read: {exc}") from exc
    h, w = image.shape[:2]
    for key, actual in (("imageHeight", h), ("imageWidth", w)):
        declared = d.get(key)
        if declared is not None and declared != actual:
            raise LabelmeError(f"{path}: {key} is {declared} but the image has {actual}")
    shapes = [_parse_shape(s, i, path) for i, s in enumerate(d["shapes"])]
    return LabelmeFile(path, image_path, image, shapes, str(d.get("version", "")))


def import_labelme(path: str | os.PathLike[str], labels: LabelMap | Sequence[str]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Read a labelme file as ``(rgb, mask)`` against a fixed label list.

    Args:
        path: The JSON file.
        labels: A :class:`LabelMap`, or the project's class names (``__ignore__`` is 255).

    Raises:
        UnknownLabelError: A label is not in the list.
        LabelmeError: The file is malformed.
    """
    lm = labels if isinstance(labels, LabelMap) else LabelMap.from_names(labels)
    doc = read_labelme(path)
    return doc.image, shapes_to_label(doc.shape, doc.shapes, lm, doc.path)
