"""Annotation projects: a folder in PASCAL VOC layout that keeps the user's masks safe.

Layout::

    project.json                  image list, sources, which images are corrected
    class_names.txt               one class name a line, background first
    JPEGImages/<id>.<ext>         only for images copied into the project
    SegmentationClass/<id>.png    palette PNG masks (VOC colormap, 255 = void)
    Corrections/<id>.png          1 where the user corrected the mask (for fine-tuning)
    .journal/<id>.fcnj            strokes since the last save (core.annotation.journal)

Every file is written atomically (a failed write leaves the previous file intact), and
:meth:`Project.save_mask` is cheap when nothing changed (a hash, no PNG encoding, no
write), so it suits autosave.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.annotation.journal import Journal
from core.atomic import atomic_path, atomic_write_text, clean_stale_temps
from core.data.imageio import check_mask, image_size, read_image, read_mask, write_mask
from core.data.palette import VOC_PALETTE, VOID, read_class_names, write_class_names
from core.errors import DatasetError, ImageReadError, MaskError, WriteError
from core.fileio import describe_os_error, is_regular_file, read_bytes, resolve
from core.jsonio import read_json

__all__ = ["PROJECT_FILE", "Project", "ProjectImage"]

PROJECT_FILE = "project.json"
FORMAT = "fcn-studio-project/1"
DEFAULT_FOLDER_NAME = "fcn-studio-project"
_CORRECTION_PALETTE = np.array([[0, 0, 0], [255, 255, 255]], np.uint8)
_BAD_ID_CHARS = re.compile(r"[\s/\\]+")


@dataclass
class ProjectImage:
    """One image of a project.

    Attributes:
        id: File stem used for every derived file (unique, no whitespace or slashes).
        path: The image as stored in ``project.json``: relative to the project folder
            when possible, else absolute.
        copied: Whether the image lives in the project's ``JPEGImages/``.
        corrected: Whether the user has corrected (saved an edited) mask for it.
    """

    id: str
    path: str
    copied: bool = False
    corrected: bool = False

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"id": self.id, "path": self.path, "copied": self.copied,
                "corrected": self.corrected}

    @classmethod
    def from_dict(cls, d: dict) -> ProjectImage:
        """Inverse of :meth:`to_dict`."""
        return cls(str(d["id"]), str(d["path"]), bool(d.get("copied", False)),
                   bool(d.get("corrected", False)))


def _digest(*arrays: np.ndarray | None) -> str:
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        if a is None:
            h.update(b"none")
        else:
            h.update(str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class Project:
    """An annotation project folder (see the module docstring for the layout)."""

    def __init__(self, folder: Path, class_names: list[str], images: list[ProjectImage],
                 created: str = "") -> None:
        """Use :meth:`create` or :meth:`open`."""
        self.folder = Path(folder)
        self.class_names = list(class_names)
        self.images = images
        self.created = created or _now()
        self._by_id = {im.id: im for im in images}
        self._saved: dict[str, str] = {}  # id -> digest of the last saved mask + corrections
        self._sizes: dict[str, tuple[int, int]] = {}  # id -> image (width, height)

    # ------------------------------------------------------------------ create / open

    @staticmethod
    def default_folder(images: Sequence[str | os.PathLike[str]]) -> Path:
        """The default project folder: ``fcn-studio-project`` next to the first image.

        Images inside a dataset's image folder (VOC ``JPEGImages``, or ``images`` of an
        images/masks pair) get the project beside the dataset folder, not inside it.
        """
        if not images:
            raise DatasetError("A project needs at least one image to place it next to")
        folder = Path(images[0]).resolve().parent
        if folder.name in ("JPEGImages", "images"):
            folder = folder.parent
        return folder / DEFAULT_FOLDER_NAME

    @classmethod
    def create(cls, folder: str | os.PathLike[str], class_names: Sequence[str],
               images: Iterable[str | os.PathLike[str]] = (), *,
               copy_images: bool = False) -> Project:
        """Create a new project in ``folder`` (created if needed) and save it.

        Args:
            folder: The project folder; it must not hold a project already.
            class_names: Class names, background first (at most 255 classes).
            images: Image files to add.
            copy_images: Copy the images into ``JPEGImages/`` instead of referencing them.

        Raises:
            DatasetError: The folder already holds a project, the class names are bad, or
                an image cannot be read.
        """
        folder = Path(folder)
        if os.path.lexists(folder / PROJECT_FILE):
            raise DatasetError(f"{folder} already holds a project; open it instead")
        names = [str(n).strip() for n in class_names]
        if not names or any(not n for n in names) or len(set(names)) != len(names):
            raise DatasetError(f"Class names must be non-empty and distinct, got {names}")
        if len(names) > VOID:
            raise DatasetError(f"A project has at most {VOID} classes, got {len(names)}")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriteError(f"Cannot create the project folder {folder}: "
                             f"{describe_os_error(exc)}") from exc
        project = cls(folder, names, [])
        write_class_names(folder / "class_names.txt", names)
        project.add_images(images, copy_images=copy_images)
        project.save()
        return project

    @classmethod
    def open(cls, folder: str | os.PathLike[str]) -> Project:
        """Open an existing project.

        Raises:
            DatasetError: No ``project.json``, or it is malformed.
        """
        folder = Path(folder)
        f = folder / PROJECT_FILE
        if not is_regular_file(f):
            raise DatasetError(f"{folder} is not an FCN Studio project: no {PROJECT_FILE}")
        d = read_json(f, DatasetError, "project")
        try:
            if not isinstance(d, dict):
                raise TypeError("not a JSON object")
            if d.get("format") != FORMAT:
                raise ValueError(f"unknown format {d.get('format')!r}")
            images = [ProjectImage.from_dict(x) for x in d["images"]]
            names = [str(n) for n in d["class_names"]]
            if len({im.id for im in images}) != len(images):
                raise ValueError("image ids repeat")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DatasetError(f"Cannot open project {f}: {exc}") from exc
        names_file = folder / "class_names.txt"
        if is_regular_file(names_file) and read_class_names(names_file) != names:
            raise DatasetError(
                f"{names_file} disagrees with {f} on the class names; fix one of them"
            )
        for sub in (folder, folder / "SegmentationClass", folder / "Corrections",
                    folder / "JPEGImages"):
            clean_stale_temps(sub)  # left by a process killed while writing
        return cls(folder, names, images, created=str(d.get("created", "")))

    def save(self) -> None:
        """Write ``project.json`` atomically."""
        d = {
            "format": FORMAT,
            "class_names": self.class_names,
            "created": self.created,
            "modified": _now(),
            "images": [im.to_dict() for im in self.images],
        }
        atomic_write_text(self.folder / PROJECT_FILE, json.dumps(d, indent=2) + "\n")

    # ------------------------------------------------------------------ images

    def _unique_id(self, stem: str) -> str:
        base = _BAD_ID_CHARS.sub("_", stem).strip("._") or "image"
        image_id, n = base, 1
        while image_id in self._by_id:
            n += 1
            image_id = f"{base}_{n}"
        return image_id

    def _stored_path(self, path: Path) -> str:
        try:
            return Path(os.path.relpath(path, self.folder.resolve())).as_posix()
        except ValueError:  # another drive on Windows
            return str(path)

    def add_images(self, paths: Iterable[str | os.PathLike[str]], *,
                   copy_images: bool = False) -> list[str]:
        """Add image files; return their new ids (an image already in the project is skipped).

        Raises:
            ImageReadError: A file is missing or not a readable image.
        """
        known = {self.image_path(im.id) for im in self.images}
        added: list[str] = []
        for p in paths:
            src = resolve(p, ImageReadError, "image")
            if src in known:
                continue
            image_size(src)  # readable? (header only)
            image_id = self._unique_id(src.stem)
            if copy_images:
                dst = self.folder / "JPEGImages" / f"{image_id}{src.suffix.lower()}"
                data = read_bytes(src, ImageReadError, "image")
                with atomic_path(dst) as tmp:
                    tmp.write_bytes(data)
                entry = ProjectImage(image_id, self._stored_path(dst.resolve()), copied=True)
            else:
                entry = ProjectImage(image_id, self._stored_path(src))
            self.images.append(entry)
            self._by_id[image_id] = entry
            known.add(src)
            added.append(image_id)
        if added:
            self.save()
        return added

    def ids(self) -> list[str]:
        """Image ids in project order."""
        return [im.id for im in self.images]

    def __len__(self) -> int:
        return len(self.images)

    def image(self, image_id: str) -> ProjectImage:
        """The entry of ``image_id``.

        Raises:
            DatasetError: No such image in the project.
        """
        try:
            return self._by_id[image_id]
        except KeyError:
            raise DatasetError(f"Project {self.folder} has no image {image_id!r}") from None

    def image_path(self, image_id: str) -> Path:
        """The image file (absolute)."""
        p = Path(self.image(image_id).path)
        return resolve(p if p.is_absolute() else self.folder / p, ImageReadError, "image")

    def missing_images(self) -> list[str]:
        """Ids whose image file no longer exists (moved or deleted sources)."""
        return [im.id for im in self.images if not is_regular_file(self._raw_path(im.id))]

    def _raw_path(self, image_id: str) -> Path:
        p = Path(self.image(image_id).path)
        return p if p.is_absolute() else self.folder / p

    def read_image(self, image_id: str) -> np.ndarray:
        """The image as ``H x W x 3`` uint8 RGB."""
        return read_image(self.image_path(image_id))

    def mask_path(self, image_id: str) -> Path:
        """``SegmentationClass/<id>.png``."""
        return self.folder / "SegmentationClass" / f"{self.image(image_id).id}.png"

    def corrections_path(self, image_id: str) -> Path:
        """``Corrections/<id>.png``."""
        return self.folder / "Corrections" / f"{self.image(image_id).id}.png"

    def has_mask(self, image_id: str) -> bool:
        """Whether a mask was saved for the image."""
        return is_regular_file(self.mask_path(image_id))

    # ------------------------------------------------------------------ masks

    def load_mask(self, image_id: str) -> np.ndarray | None:
        """The saved mask (``H x W`` uint8), or None when there is none yet."""
        path = self.mask_path(image_id)
        if not is_regular_file(path):
            return None
        return read_mask(path)

    def load_corrections(self, image_id: str) -> np.ndarray | None:
        """Boolean ``H x W`` corrected pixels, or None (no record: treat all as labelled)."""
        path = self.corrections_path(image_id)
        if not is_regular_file(path):
            return None
        return read_mask(path) > 0

    def save_mask(self, image_id: str, mask: np.ndarray,
                  corrected: np.ndarray | bool | None = None) -> bool:
        """Save a mask (and its corrected pixels) atomically; skip it when nothing changed.

        Args:
            image_id: The image.
            mask: ``H x W`` labels in ``0 .. len(class_names) - 1`` or 255.
            corrected: Boolean ``H x W`` array of corrected pixels (stored in
                ``Corrections/``); True: the whole mask is the user's (no corrections file);
                False: the image is not corrected; None: leave the record as it is.

        Returns:
            Whether anything was written.

        Raises:
            MaskError: The mask does not fit the image size or the class count, or a file
                cannot be written (the previous file is then left intact).
        """
        entry = self.image(image_id)
        mask = np.asarray(mask)
        corr = None if isinstance(corrected, (bool, type(None))) else np.asarray(corrected, bool)
        digest = _digest(mask, corr, np.array([corrected is True, corrected is False]))
        if self._saved.get(image_id) == digest:
            return False
        check_mask(mask, mask.shape, len(self.class_names), self.mask_path(image_id))
        height, width = mask.shape
        if image_id not in self._sizes and is_regular_file(self._raw_path(image_id)):
            self._sizes[image_id] = image_size(self.image_path(image_id))
        if image_id in self._sizes:
            iw, ih = self._sizes[image_id]
            if (ih, iw) != (height, width):
                raise MaskError(
                    f"Mask for {image_id!r} is {width}x{height} but its image is {iw}x{ih}"
                )
        if corr is not None and corr.shape != mask.shape:
            raise MaskError(f"Corrected pixels are {corr.shape}, the mask is {mask.shape}")
        flag = entry.corrected
        with contextlib.ExitStack() as stack:
            # Both files are encoded into temporary files first and then renamed one right
            # after the other, so a mask and its corrections always come from one save
            # (a kill can only fall between two renames).
            if corr is not None:
                corr_tmp = stack.enter_context(atomic_path(self.corrections_path(image_id)))
                write_mask(corr_tmp, corr.astype(np.uint8), _CORRECTION_PALETTE)
                flag = bool(corr.any())
            elif corrected is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.corrections_path(image_id).unlink()
                flag = bool(corrected)
            mask_tmp = stack.enter_context(atomic_path(self.mask_path(image_id)))
            write_mask(mask_tmp, mask, VOC_PALETTE)
        if flag != entry.corrected:
            entry.corrected = flag
            self.save()
        self._saved[image_id] = digest
        return True

    def journal(self, image_id: str) -> Journal:
        """The stroke journal of ``image_id`` (then ``journal.replay(self.load_mask(...))``)."""
        width, height = image_size(self.image_path(image_id))
        return Journal.open(self.folder, self.image(image_id).id, (height, width),
                            num_classes=len(self.class_names))

    def corrected_ids(self) -> list[str]:
        """Images whose masks the user corrected."""
        return [im.id for im in self.images if im.corrected and self.has_mask(im.id)]

    def labeled_ids(self) -> list[str]:
        """Images that have a saved mask."""
        return [im.id for im in self.images if self.has_mask(im.id)]

    def training_items(self, ids: Sequence[str] | None = None
                       ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """``(rgb, mask, corrected)`` triples for fine-tuning (default: corrected images)."""
        ids = self.corrected_ids() if ids is None else list(ids)
        items = []
        for image_id in ids:
            mask = self.load_mask(image_id)
            if mask is None:
                raise DatasetError(f"Image {image_id!r} of {self.folder} has no mask yet")
            items.append((self.read_image(image_id), mask, self.load_corrections(image_id)))
        return items

    # ------------------------------------------------------------------ export

    def export_voc(self, out: str | os.PathLike[str], *, ids: Sequence[str] | None = None,
                   val_fraction: float = 0.2, seed: int = 0, corrected_only: bool = False,
                   image_ext: str = ".jpg",
                   progress: Callable[[int, int], None] | None = None) -> Path:
        """Write a VOC dataset that ``python -m core train`` accepts; return its root.

        Writes ``JPEGImages``, ``SegmentationClass``, ``ImageSets/Segmentation/{train,val,
        trainval}.txt`` and ``class_names.txt``.

        Args:
            out: Dataset folder (created if needed).
            ids: Images to export (default: every image with a mask).
            val_fraction: Share of images listed in ``val`` (none when fewer than two).
            seed: Seeds the train/val split.
            corrected_only: Set the pixels the user did not correct to 255 (void).
            image_ext: Image format of ``JPEGImages`` (``.jpg`` at quality 95, ``.png``).
            progress: Called as ``progress(done, total)``.

        Raises:
            DatasetError: No image has a mask.
        """
        from core.data.voc import write_voc_dataset  # imports torch

        ids = self.labeled_ids() if ids is None else list(ids)
        if not ids:
            raise DatasetError(f"Project {self.folder} has no saved mask to export")
        n_val = round(len(ids) * val_fraction) if len(ids) >= 2 else 0
        n_val = min(max(n_val, 1 if val_fraction > 0 and len(ids) >= 2 else 0), len(ids) - 1)
        order = np.random.default_rng(seed).permutation(len(ids))
        val = {ids[i] for i in order[:n_val]}
        splits = {"train": [i for i in ids if i not in val], "val": [i for i in ids if i in val],
                  "trainval": ids}

        def items():
            for k, image_id in enumerate(ids):
                mask = self.load_mask(image_id)
                if mask is None:
                    raise DatasetError(f"Image {image_id!r} of {self.folder} has no mask yet")
                if corrected_only:
                    corr = self.load_corrections(image_id)
                    if corr is not None:
                        mask = np.where(corr, mask, np.uint8(VOID)).astype(np.uint8)
                yield image_id, self.read_image(image_id), mask
                if progress is not None:
                    progress(k + 1, len(ids))

        return write_voc_dataset(out, items(), self.class_names, splits,
                                 image_ext=image_ext, quality=95)
