"""Finding images and their reference masks in files and folders (Qt-free, torch-free).

A folder is read as a dataset when it has one of the core's layouts: ``images/`` and
``masks/`` (folder pairs, optionally in ``train/`` or ``val/``) or PASCAL VOC
(``JPEGImages/`` and ``SegmentationClass/``, directly, in ``VOC2012/`` or in
``VOCdevkit/VOC2012/``). Any other folder lists its image files, without masks.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from core.data.palette import read_class_names
from core.errors import FCNStudioError
from core.fileio import is_regular_file
from core.imagefiles import is_image_file

CLASS_NAMES_FILE = "class_names.txt"


@dataclass(frozen=True)
class ImageEntry:
    """An image file and, when a dataset provides one, its reference mask."""

    image: Path
    mask: Path | None = None

    @property
    def name(self) -> str:
        """The file name, for lists."""
        return self.image.name


@dataclass
class Listing:
    """What a file or folder gave: entries, class names found next to them, problems."""

    entries: list[ImageEntry]
    class_names: list[str] | None = None
    problems: list[str] | None = None


def natural_key(path: Path) -> list[object]:
    """Sort key that orders ``img2`` before ``img10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _images_in(folder: Path) -> list[Path]:
    try:
        entries = [Path(e.path) for e in os.scandir(folder) if e.is_file()]
    except OSError:
        return []
    return sorted((p for p in entries if is_image_file(p)), key=natural_key)


def _mask_dir_for(folder: Path) -> Path | None:
    """Where the masks of the images in ``folder`` live, if it is part of a dataset."""
    if folder.name == "images" and (folder.parent / "masks").is_dir():
        return folder.parent / "masks"
    if folder.name == "JPEGImages" and (folder.parent / "SegmentationClass").is_dir():
        return folder.parent / "SegmentationClass"
    return None


def mask_for(image: Path) -> Path | None:
    """The reference mask of an image inside a dataset layout, or None."""
    masks = _mask_dir_for(image.parent)
    if masks is None:
        return None
    mask = masks / f"{image.stem}.png"
    return mask if mask.is_file() else None


def _dataset_image_dir(root: Path) -> Path | None:
    """The image folder of a dataset rooted at ``root``, or None."""
    for cand in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (cand / "JPEGImages").is_dir() and (cand / "SegmentationClass").is_dir():
            return cand / "JPEGImages"
    for cand in (root, root / "train", root / "val"):
        if (cand / "images").is_dir() and (cand / "masks").is_dir():
            return cand / "images"
    return None


def _class_names_near(folder: Path) -> list[str] | None:
    """Class names from a ``class_names.txt`` in ``folder`` or up to two parents."""
    for cand in (folder, folder.parent, folder.parent.parent):
        f = cand / CLASS_NAMES_FILE
        if is_regular_file(f):
            try:
                return read_class_names(f)
            except FCNStudioError:
                return None
    return None


def scan(paths: Iterable[str | os.PathLike[str]]) -> Listing:
    """List the images of files and folders, with masks where a dataset layout has them."""
    entries: list[ImageEntry] = []
    problems: list[str] = []
    class_names: list[str] | None = None
    seen: set[Path] = set()

    def add(image: Path, mask: Path | None) -> None:
        key = image.resolve()
        if key not in seen:
            seen.add(key)
            entries.append(ImageEntry(image, mask))

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            image_dir = _dataset_image_dir(path) or path
            images = _images_in(image_dir)
            if not images:
                problems.append(f"No image files in folder {path}")
            for img in images:
                add(img, mask_for(img))
            class_names = class_names or _class_names_near(image_dir)
        elif path.is_file():
            add(path, mask_for(path))
            class_names = class_names or _class_names_near(path.parent)
        else:
            problems.append(f"{path} does not exist")
    return Listing(entries, class_names, problems)
