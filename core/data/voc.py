"""Dataset layouts: PASCAL VOC 2012 and plain ``images/`` + ``masks/`` folders.

Both give lists of ``(image_path, mask_path)`` pairs; :class:`SegmentationDataset` reads
them as numpy arrays (image ``H x W x 3`` uint8 RGB, mask ``H x W`` uint8 labels).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.atomic import atomic_write_text
from core.data.imageio import check_mask, read_image, read_mask, write_image, write_mask
from core.data.palette import VOC_CLASSES, VOC_PALETTE, read_class_names, write_class_names
from core.errors import DatasetError, MaskError
from core.fileio import is_regular_file
from core.imagefiles import IMAGE_SUFFIXES

CLASS_NAMES_FILE = "class_names.txt"

Pair = tuple[Path, Path]

__all__ = [
    "FolderPairs",
    "SegmentationDataset",
    "VOCLayout",
    "open_dataset",
    "write_voc_dataset",
]

_ID_RE = re.compile(r"^[^\s/\\]+$")


def _index_images(folder: Path) -> dict[str, Path]:
    """Map each image stem in ``folder`` to its file, preferring the order of
    :data:`~core.imagefiles.IMAGE_SUFFIXES`."""
    rank = {ext: i for i, ext in enumerate(IMAGE_SUFFIXES)}
    best: dict[str, tuple[int, Path]] = {}
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return {}
    for entry in entries:
        path = Path(entry.path)
        r = rank.get(path.suffix.lower())
        if r is None or path.name.startswith(".") or not entry.is_file():
            continue
        if path.stem not in best or r < best[path.stem][0]:
            best[path.stem] = (r, path)
    return {stem: p for stem, (_, p) in best.items()}


def _index_masks(folder: Path) -> dict[str, Path]:
    """Map each ``.png`` stem in ``folder`` to its file."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return {}
    return {
        Path(e.path).stem: Path(e.path)
        for e in entries
        if e.name.lower().endswith(".png") and not e.name.startswith(".") and e.is_file()
    }


def _first_few(items: Sequence[str], n: int = 5) -> str:
    shown = ", ".join(items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def _class_names_in(*folders: Path) -> list[str] | None:
    for folder in folders:
        f = folder / CLASS_NAMES_FILE
        if is_regular_file(f):
            return read_class_names(f)
    return None


class VOCLayout:
    """A PASCAL VOC 2012 style folder.

    ``root`` may be the ``VOC2012`` folder itself (holding ``JPEGImages``,
    ``SegmentationClass`` and ``ImageSets/Segmentation``), a ``VOCdevkit`` holding
    ``VOC2012``, or a folder holding ``VOCdevkit/VOC2012``.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        """Find the VOC folder under ``root``.

        Raises:
            DatasetError: No VOC layout is found.
        """
        self.given_root = Path(root)
        found = self.find(self.given_root)
        if found is None:
            raise DatasetError(
                f"{self.given_root} is not a PASCAL VOC folder: expected JPEGImages/ and "
                "SegmentationClass/ in it, in VOC2012/ or in VOCdevkit/VOC2012/"
            )
        self.root = found
        self._images: dict[str, Path] | None = None

    @staticmethod
    def find(root: Path) -> Path | None:
        """The VOC2012-like folder under ``root``, or None."""
        for cand in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
            if (cand / "JPEGImages").is_dir() and (cand / "SegmentationClass").is_dir():
                return cand
        return None

    @property
    def split_dir(self) -> Path:
        """``ImageSets/Segmentation``."""
        return self.root / "ImageSets" / "Segmentation"

    def splits(self) -> list[str]:
        """Names of the available split files (``train``, ``val``...), sorted."""
        if not self.split_dir.is_dir():
            return []
        return sorted(p.stem for p in self.split_dir.glob("*.txt"))

    def ids(self, split: str) -> list[str]:
        """Image ids listed in ``ImageSets/Segmentation/<split>.txt``.

        Raises:
            DatasetError: The split file is missing or unreadable.
        """
        f = self.split_dir / f"{split}.txt"
        if not f.is_file():
            have = self.splits()
            raise DatasetError(
                f"VOC dataset {self.root} has no split {split!r}: expected {f}"
                + (f"; available splits: {', '.join(have)}" if have else "")
            )
        try:
            lines = f.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"Cannot read split file {f}: {exc}") from exc
        return [ln.split()[0] for ln in lines if ln.strip()]

    def image_path(self, image_id: str) -> Path | None:
        """The image file of ``image_id`` (any image extension), or None."""
        if self._images is None:
            self._images = _index_images(self.root / "JPEGImages")
        return self._images.get(image_id)

    def mask_path(self, image_id: str) -> Path:
        """``SegmentationClass/<id>.png`` (whether it exists or not)."""
        return self.root / "SegmentationClass" / f"{image_id}.png"

    def pairs(self, split: str) -> list[Pair]:
        """``(image, mask)`` paths of a split.

        Raises:
            DatasetError: The split file is missing, empty, or lists ids whose image or
                mask file is missing (the first few are named).
        """
        ids = self.ids(split)
        if not ids:
            raise DatasetError(f"Split {split!r} of {self.root} lists no images")
        pairs: list[Pair] = []
        no_image: list[str] = []
        no_mask: list[str] = []
        for image_id in ids:
            img = self.image_path(image_id)
            mask = self.mask_path(image_id)
            if img is None:
                no_image.append(image_id)
            if not mask.is_file():
                no_mask.append(image_id)
            if img is not None and mask.is_file():
                pairs.append((img, mask))
        problems = []
        if no_image:
            problems.append(
                f"{len(no_image)} without an image in {self.root / 'JPEGImages'} "
                f"({_first_few(no_image)})"
            )
        if no_mask:
            problems.append(
                f"{len(no_mask)} without a mask in {self.root / 'SegmentationClass'} "
                f"({_first_few(no_mask)})"
            )
        if problems:
            raise DatasetError(
                f"Split {split!r} of {self.root} lists ids with missing files: "
                + "; ".join(problems)
            )
        return pairs

    @property
    def class_names(self) -> list[str]:
        """From ``class_names.txt`` (in the VOC folder or the given root), else VOC_CLASSES."""
        names = _class_names_in(self.root, self.given_root)
        return names if names is not None else list(VOC_CLASSES)


class FolderPairs:
    """A folder with ``images/`` and ``masks/`` whose files share stems (masks are ``.png``)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        """Check the layout.

        Raises:
            DatasetError: ``images/`` or ``masks/`` is missing.
        """
        self.root = Path(root)
        if not self.is_layout(self.root):
            raise DatasetError(
                f"{self.root} is not an image/mask folder: expected images/ and masks/ in it"
            )

    @staticmethod
    def is_layout(root: Path) -> bool:
        """Whether ``root`` holds ``images/`` and ``masks/``."""
        return (root / "images").is_dir() and (root / "masks").is_dir()

    def pairs(self) -> list[tuple[Path, Path | None]]:
        """Every image with its mask, or None when it has none, sorted by stem."""
        images = _index_images(self.root / "images")
        masks = _index_masks(self.root / "masks")
        return [(images[s], masks.get(s)) for s in sorted(images)]

    def labeled_pairs(self) -> list[Pair]:
        """Only the images that have a mask."""
        return [(i, m) for i, m in self.pairs() if m is not None]

    @property
    def class_names(self) -> list[str]:
        """From ``class_names.txt`` when present, else VOC_CLASSES."""
        names = _class_names_in(self.root)
        return names if names is not None else list(VOC_CLASSES)


class SegmentationDataset:
    """Image/mask pairs read as numpy arrays, optionally through a joint transform.

    A map-style dataset (``__len__`` and ``__getitem__``), usable with torch's DataLoader;
    this module itself does not import torch, so the app can use the layouts cheaply.
    """

    def __init__(
        self,
        pairs: Sequence[tuple[str | os.PathLike[str], str | os.PathLike[str]]],
        transform: Callable[[np.ndarray, np.ndarray], Any] | None = None,
        num_classes: int | None = None,
    ) -> None:
        """Keep the pairs; nothing is read yet.

        Args:
            pairs: ``(image_path, mask_path)`` pairs.
            transform: Called as ``transform(image, mask)``; its result is returned.
            num_classes: When given, each mask's labels are checked against it.

        Raises:
            ValueError: A pair has no mask.
        """
        self.pairs: list[Pair] = []
        for img, mask in pairs:
            if mask is None:
                raise ValueError(f"Image {img} has no mask; SegmentationDataset needs masks")
            self.pairs.append((Path(img), Path(mask)))
        self.transform = transform
        self.num_classes = num_classes

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Any:
        """Read pair ``index``: ``(image, mask)``, or what the transform returns.

        Raises:
            ImageReadError: The image cannot be read.
            MaskError: The mask cannot be read, its size differs from the image's (both
                files are named), or (with ``num_classes``) a label is out of range.
        """
        img_path, mask_path = self.pairs[index]
        image = read_image(img_path)
        mask = read_mask(mask_path)
        if mask.shape != image.shape[:2]:
            raise MaskError(
                f"Mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} pixels but image "
                f"{img_path} is {image.shape[1]}x{image.shape[0]}"
            )
        if self.num_classes is not None:
            check_mask(mask, image.shape, self.num_classes, mask_path)
        if self.transform is not None:
            return self.transform(image, mask)
        return image, mask


def open_dataset(
    root: str | os.PathLike[str], split: str = "train"
) -> tuple[list[Pair], list[str]]:
    """Find the dataset under ``root`` and return the labeled pairs of ``split``.

    Layouts tried, in order:

    1. PASCAL VOC (see :class:`VOCLayout`): pairs of ``ImageSets/Segmentation/<split>.txt``.
    2. ``root/<split>/images`` + ``root/<split>/masks``: every labeled image there.
    3. ``root/images`` + ``root/masks``: the stems listed in ``root/<split>.txt`` if that
       file exists, else every labeled image (the split is then not used).

    Class names come from ``class_names.txt`` when present, else the 21 VOC classes.

    Returns:
        ``(pairs, class_names)``; ``pairs`` suits :class:`SegmentationDataset`.

    Raises:
        DatasetError: No layout is found (what was expected is listed), the split file is
            missing, or listed ids have missing files (the first few are named), or the
            folder has no labeled image.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"Dataset folder {root} does not exist or is not a folder")
    if VOCLayout.find(root) is not None:
        voc = VOCLayout(root)
        return voc.pairs(split), voc.class_names
    for folder in (root / split, root):
        if not FolderPairs.is_layout(folder):
            continue
        fp = FolderPairs(folder)
        names = _class_names_in(folder, root)
        class_names = names if names is not None else list(VOC_CLASSES)
        listing = root / f"{split}.txt"
        all_pairs = fp.pairs()
        if folder == root and listing.is_file():
            by_stem = {img.stem: (img, mask) for img, mask in all_pairs}
            try:
                lines = listing.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise DatasetError(f"Cannot read split file {listing}: {exc}") from exc
            stems = [ln.split()[0] for ln in lines if ln.strip()]
            missing = [s for s in stems if s not in by_stem or by_stem[s][1] is None]
            if missing:
                raise DatasetError(
                    f"{listing} lists {len(missing)} stem(s) without an image and a mask "
                    f"in {folder / 'images'} and {folder / 'masks'}: {_first_few(missing)}"
                )
            pairs = [by_stem[s] for s in stems]
        else:
            pairs = [(i, m) for i, m in all_pairs if m is not None]
        if not pairs:
            raise DatasetError(
                f"{folder} has no image with a mask: expected images/<name>.<jpg|png|...> "
                "with masks/<name>.png"
            )
        return pairs, class_names  # type: ignore[return-value]
    raise DatasetError(
        f"No dataset found in {root}: expected either a PASCAL VOC folder (JPEGImages/, "
        "SegmentationClass/, ImageSets/Segmentation/<split>.txt, directly or in VOC2012/ or "
        f"VOCdevkit/VOC2012/), or images/ and masks/ folders (directly or in {split}/)"
    )


def write_voc_dataset(
    root: str | os.PathLike[str],
    items: Iterable[tuple[str, np.ndarray, np.ndarray]],
    class_names: Sequence[str],
    splits: Mapping[str, Sequence[str]],
    image_ext: str = ".jpg",
    palette: np.ndarray = VOC_PALETTE,
    quality: int = 95,
) -> Path:
    """Write a PASCAL VOC style dataset; every file is written atomically.

    Writes ``root/JPEGImages/<id><image_ext>``, ``root/SegmentationClass/<id>.png``
    (palette PNG), ``root/ImageSets/Segmentation/<split>.txt`` and ``root/class_names.txt``.

    Args:
        root: The VOC2012-like folder to write (created if needed).
        items: ``(id, rgb, mask)`` triples; ``rgb`` is ``H x W x 3`` uint8, ``mask``
            ``H x W`` labels in ``0 .. len(class_names) - 1`` or 255.
        class_names: Names of the classes, background first.
        splits: Split name to the ids it lists.
        image_ext: Image extension (``.jpg`` or ``.png``...).
        palette: Mask palette.
        quality: JPEG quality.

    Returns:
        ``root`` as a Path.

    Raises:
        DatasetError: An id is empty, has whitespace or slashes, is repeated, or a split
            lists an id that is neither written now nor already on disk.
        MaskError: A mask does not fit its image or has labels out of range.
    """
    root = Path(root)
    if not image_ext.startswith("."):
        image_ext = "." + image_ext
    jpeg_dir = root / "JPEGImages"
    mask_dir = root / "SegmentationClass"
    split_dir = root / "ImageSets" / "Segmentation"
    written: set[str] = set()
    for image_id, rgb, mask in items:
        if not _ID_RE.match(image_id) or image_id in (".", ".."):
            raise DatasetError(f"Invalid image id {image_id!r}: ids must be non-empty file stems")
        if image_id in written:
            raise DatasetError(f"Image id {image_id!r} is written twice in {root}")
        rgb = np.asarray(rgb)
        mask = np.asarray(mask)
        mask_path = mask_dir / f"{image_id}.png"
        check_mask(mask, rgb.shape, len(class_names), mask_path)
        write_image(jpeg_dir / f"{image_id}{image_ext}", rgb, quality=quality)
        write_mask(mask_path, mask, palette)
        written.add(image_id)
    known_on_disk = set(_index_images(jpeg_dir)) & set(_index_masks(mask_dir))
    for name, ids in splits.items():
        unknown = [i for i in ids if i not in written and i not in known_on_disk]
        if unknown:
            raise DatasetError(
                f"Split {name!r} lists ids with no image and mask in {root}: {_first_few(unknown)}"
            )
        atomic_write_text(split_dir / f"{name}.txt", "".join(f"{i}\n" for i in ids))
    write_class_names(root / CLASS_NAMES_FILE, list(class_names))
    return root
