"""Annotation projects: a folder in PASCAL VOC layout that keeps the user's masks safe.

Layout::

    project.json                  classes (names, colors), image list, sources, which
                                  images are corrected or held out, how much of each
                                  mask is labelled
    class_names.txt               one class name a line, label 0 first
    JPEGImages/<id>.<ext>         only for images copied into the project
    SegmentationClass/<id>.png    palette PNG masks (VOC colormap, 255 = void)
    Corrections/<id>.png          1 where the user corrected the mask (for fine-tuning)
    .saves/<id>.json              which mask and corrections belong together (core.annotation.saves)
    .journal/<id>.fcnj            strokes since the last save (core.annotation.journal)

Every file is written atomically (a failed write leaves the previous file intact), and
:meth:`Project.save_mask` is cheap when nothing changed (a hash, no PNG encoding, no
write), so it suits autosave. A mask and its corrections are two files; the save manifest
records which belong together, so a save killed between them never pairs a mask with the
corrections of another save (:meth:`Project.load_pair`).

The project owns its classes (:mod:`core.annotation.classes`): names and colors, recorded
in ``project.json`` beside the names of ``class_names.txt``; projects saved before colors
were recorded get the VOC palette. A class edit renumbers every mask of the project,
crash-safe and undoable (:mod:`core.annotation.renumber`); :meth:`Project.open` finishes
one that was interrupted.
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

from core.annotation.classes import (
    ClassListError,
    ProjectClass,
    as_classes,
    check_classes,
    recorded_classes,
)
from core.annotation.journal import Journal
from core.annotation.saves import LEGACY, SAVES_DIR, SavedMask, SaveRecord
from core.atomic import atomic_path, atomic_write_text, clean_stale_temps
from core.data.imageio import check_mask, image_size, read_image, read_mask
from core.data.palette import VOID, read_class_names, write_class_names
from core.errors import DatasetError, FCNStudioError, ImageReadError, MaskError, WriteError
from core.fileio import describe_os_error, is_regular_file, read_bytes, resolve
from core.jsonio import read_json

__all__ = ["CORRECTED", "NOT_ANNOTATED", "PROJECT_FILE", "ROUGH", "ROUGH_LABELLED_BELOW",
           "Project", "ProjectImage", "SavedMask"]

PROJECT_FILE = "project.json"
FORMAT = "fcn-studio-project/1"
DEFAULT_FOLDER_NAME = "fcn-studio-project"
_BAD_ID_CHARS = re.compile(r"[\s/\\]+")
NOT_ANNOTATED, ROUGH, CORRECTED = "not annotated", "rough labels", "corrected"
"""An image's annotation state (:meth:`Project.image_state`)."""
ROUGH_LABELLED_BELOW = 0.5
"""A user's mask labelling less than this share of its pixels holds rough labels (strokes,
every other pixel void and ignored by training, as in ilastik); at or above it, corrected."""


@dataclass
class ProjectImage:
    """One image of a project.

    Attributes:
        id: File stem used for every derived file (unique, no whitespace or slashes).
        path: The image as stored in ``project.json``: relative to the project folder
            when possible, else absolute.
        copied: Whether the image lives in the project's ``JPEGImages/``.
        corrected: Whether the user has corrected (saved an edited) mask for it.
        held_out: Not trained on: scored before and after each training round.
        labelled: The share of the saved mask's pixels that are not void (None: not known
            yet, e.g. saved by an older version).
    """

    id: str
    path: str
    copied: bool = False
    corrected: bool = False
    held_out: bool = False
    labelled: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"id": self.id, "path": self.path, "copied": self.copied,
                "corrected": self.corrected, "held_out": self.held_out,
                "labelled": self.labelled}

    @classmethod
    def from_dict(cls, d: dict) -> ProjectImage:
        """Inverse of :meth:`to_dict`."""
        labelled = d.get("labelled")
        return cls(str(d["id"]), str(d["path"]), bool(d.get("copied", False)),
                   bool(d.get("corrected", False)), bool(d.get("held_out", False)),
                   float(labelled) if isinstance(labelled, (int, float)) else None)


def _digest(*arrays: np.ndarray | None) -> str:
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        if a is None:
            h.update(b"none")
        else:
            h.update(str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _labelled(mask: np.ndarray) -> float:
    return round(float(np.count_nonzero(mask != VOID)) / max(1, mask.size), 4)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class Project:
    """An annotation project folder (see the module docstring for the layout)."""

    def __init__(self, folder: Path, class_names: Sequence[str] | Sequence[ProjectClass],
                 images: list[ProjectImage], created: str = "") -> None:
        """Use :meth:`create` or :meth:`open` (``class_names``: names, VOC colors, or
        :class:`ProjectClass` objects)."""
        self.folder = Path(folder)
        self.classes: tuple[ProjectClass, ...] = as_classes(class_names)
        self.images = images
        self.created = created or _now()
        self._by_id = {im.id: im for im in images}
        self._saved: dict[str, str] = {}  # id -> digest of the last saved mask + corrections
        self._sizes: dict[str, tuple[int, int]] = {}  # id -> image (width, height)
        self.recovered = None  # the class edit open() finished after a crash (an EditResult)

    @property
    def class_names(self) -> list[str]:
        """The class names, label 0 first."""
        return [c.name for c in self.classes]

    @property
    def colors(self) -> list[tuple[int, int, int]]:
        """The class colors, label 0 first."""
        return [c.color for c in self.classes]

    def set_classes(self, classes: Sequence[ProjectClass]) -> None:
        """Record a new class list: ``project.json``, then ``class_names.txt``.

        Only :mod:`core.annotation.renumber` calls it, with the masks renumbered to match.
        """
        self.classes = check_classes(classes)
        self._saved.clear()
        self.save()
        write_class_names(self.folder / "class_names.txt", self.class_names)

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
    def create(cls, folder: str | os.PathLike[str],
               class_names: Sequence[str] | Sequence[ProjectClass],
               images: Iterable[str | os.PathLike[str]] = (), *,
               copy_images: bool = False) -> Project:
        """Create a new project in ``folder`` (created if needed) and save it.

        Args:
            folder: The project folder; it must not hold a project already.
            class_names: Class names (VOC palette colors) or :class:`ProjectClass`
                objects, label 0 first (at most 255 classes).
            images: Image files to add.
            copy_images: Copy the images into ``JPEGImages/`` instead of referencing them.

        Raises:
            DatasetError: The folder already holds a project, the classes are bad
                (:class:`~core.annotation.classes.ClassListError`), or an image cannot be
                read.
        """
        folder = Path(folder)
        if os.path.lexists(folder / PROJECT_FILE):
            raise DatasetError(f"{folder} already holds a project; open it instead")
        classes = as_classes(class_names, strict=True)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriteError(f"Cannot create the project folder {folder}: "
                             f"{describe_os_error(exc)}") from exc
        project = cls(folder, classes, [])
        write_class_names(folder / "class_names.txt", project.class_names)
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
            classes = recorded_classes(names, d.get("classes"))
        except (ValueError, KeyError, TypeError, AttributeError, ClassListError) as exc:
            raise DatasetError(f"Cannot open project {f}: {exc}") from exc
        for sub in (folder, folder / "SegmentationClass", folder / "Corrections",
                    folder / "JPEGImages", folder / SAVES_DIR):
            clean_stale_temps(sub)  # left by a process killed while writing
        project = cls(folder, classes, images, created=str(d.get("created", "")))
        from core.annotation.renumber import recover

        project.recovered = recover(project)  # a class edit cut off by a crash is finished
        names_file = folder / "class_names.txt"
        if is_regular_file(names_file) and read_class_names(names_file) != project.class_names:
            raise DatasetError(
                f"{names_file} disagrees with {f} on the class names; fix one of them"
            )
        return project

    def save(self) -> None:
        """Write ``project.json`` atomically."""
        d = {
            "format": FORMAT,
            "class_names": self.class_names,
            "classes": [c.to_dict() for c in self.classes],
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

    def _record(self, image_id: str) -> SaveRecord:
        return SaveRecord(self.folder, self.image(image_id).id, self.mask_path(image_id),
                          self.corrections_path(image_id))

    def load_mask(self, image_id: str) -> np.ndarray | None:
        """The saved mask (``H x W`` uint8), or None when there is none yet."""
        path = self.mask_path(image_id)
        if not is_regular_file(path):
            return None
        return read_mask(path)

    def load_pair(self, image_id: str) -> SavedMask | None:
        """The saved mask with the corrections that belong to it; None when there is none.

        The save manifest says which corrections belong to the mask on disk: after a save
        cut off between its two files, the previous corrections (kept for that) are used;
        a mask that matches no recorded save has unknown corrections (``status
        "unknown"``, counted as the user's whole mask, never paired with the file beside
        it). Projects saved before manifests existed are read as they are.

        Raises:
            MaskError: A file is unreadable.
        """
        entry = self.image(image_id)
        saved = self._record(image_id).load(entry.corrected)
        if saved is not None and saved.status != LEGACY and saved.corrected != entry.corrected:
            entry.corrected = saved.corrected  # a save was cut off before project.json
            with contextlib.suppress(FCNStudioError):
                self.save()
        return saved

    def load_corrections(self, image_id: str) -> np.ndarray | None:
        """Boolean ``H x W`` corrected pixels, or None (no record: treat all as labelled).

        The corrections of the saved mask (:meth:`load_pair`), never those of another save.
        """
        saved = self.load_pair(image_id)
        return saved.corrections if saved is not None else None

    def save_mask(self, image_id: str, mask: np.ndarray,
                  corrected: np.ndarray | bool | None = None) -> bool:
        """Save a mask (and its corrected pixels) atomically; skip it when nothing changed.

        The corrections file is renamed into place first, then the mask; the save manifest
        (written before and after) records which belong together
        (:mod:`core.annotation.saves`), so a kill at any moment leaves files that
        :meth:`load_pair` pairs correctly.

        Args:
            image_id: The image.
            mask: ``H x W`` labels in ``0 .. len(class_names) - 1`` or 255.
            corrected: Boolean ``H x W`` array of corrected pixels (stored in
                ``Corrections/``); True: the whole mask is the user's (no corrections file);
                False: the image is not corrected; None: keep the saved mask's record.

        Returns:
            Whether anything was written.

        Raises:
            MaskError: The mask does not fit the image size or the class count, or a file
                cannot be written (the previous files are then left intact).
        """
        entry = self.image(image_id)
        mask = np.asarray(mask)
        corr = None if isinstance(corrected, (bool, type(None))) else np.asarray(corrected, bool)
        digest = _digest(mask, corr, np.array([corrected is True, corrected is False]))
        if self._saved.get(image_id) == digest:
            return False
        record = self._record(image_id)
        if corrected is None:
            corrected = record.kept_corrections(entry.corrected)
            corr = None if isinstance(corrected, (bool, type(None))) else corrected
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
        flag = record.write(np.ascontiguousarray(mask, np.uint8),
                            corr if corr is not None else corrected, entry.corrected)
        labelled = _labelled(mask)
        if flag != entry.corrected or labelled != entry.labelled:
            entry.corrected, entry.labelled = flag, labelled
            self.save()
        self._saved[image_id] = digest
        return True

    def rewrite_mask(self, image_id: str, mask: np.ndarray) -> None:
        """Replace a saved mask by its renumbering (a class edit), keeping the corrections
        that belong to it; the labels are not checked against the class list (the class
        edit records the new one once every mask is rewritten).

        Raises:
            MaskError: A file cannot be read or written (the previous files stay intact).
        """
        entry, record = self.image(image_id), self._record(image_id)
        corrected = record.kept_corrections(entry.corrected)
        entry.corrected = record.write(np.ascontiguousarray(mask, np.uint8), corrected,
                                       entry.corrected)
        entry.labelled = _labelled(mask)  # (project.json is written with the new classes)
        self._saved.pop(image_id, None)

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

    # ------------------------------------------------------------------ training rounds
    def training_ids(self) -> list[str]:
        """Images to train on: every annotated image (rough labels or corrected masks) that
        is not held out."""
        return [i for i in self.corrected_ids() if not self.image(i).held_out]

    def held_out_ids(self) -> list[str]:
        """Images marked as held out (scored before and after training, never trained on)."""
        return [im.id for im in self.images if im.held_out]

    def set_held_out(self, image_id: str, held_out: bool) -> bool:
        """Mark ``image_id`` as held out (or not); True when that changed (project.json
        written).

        Raises:
            DatasetError: No such image.
            WriteError: project.json cannot be written (the mark is not changed).
        """
        entry = self.image(image_id)
        if entry.held_out == bool(held_out):
            return False
        entry.held_out = bool(held_out)
        try:
            self.save()
        except FCNStudioError:
            entry.held_out = not entry.held_out
            raise
        return True

    def image_state(self, image_id: str) -> str:
        """:data:`NOT_ANNOTATED`, :data:`ROUGH` (the user's mask labels less than
        :data:`ROUGH_LABELLED_BELOW` of its pixels) or :data:`CORRECTED`.

        The labelled share is recorded at each save; for a mask saved by an older version
        it is read from the mask once (and recorded with the next write of project.json).
        """
        entry = self.image(image_id)
        if not entry.corrected or not self.has_mask(image_id):
            return NOT_ANNOTATED
        if entry.labelled is None:
            try:
                entry.labelled = _labelled(read_mask(self.mask_path(image_id)))
            except FCNStudioError:
                return CORRECTED
        return ROUGH if entry.labelled < ROUGH_LABELLED_BELOW else CORRECTED

    def training_items(self, ids: Sequence[str] | None = None
                       ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """``(rgb, mask, corrected)`` triples for fine-tuning (default: corrected images)."""
        ids = self.corrected_ids() if ids is None else list(ids)
        items = []
        for image_id in ids:
            saved = self.load_pair(image_id)
            if saved is None:
                raise DatasetError(f"Image {image_id!r} of {self.folder} has no mask yet")
            items.append((self.read_image(image_id), saved.mask, saved.corrections))
        return items

    def export_voc(self, out: str | os.PathLike[str], *, ids: Sequence[str] | None = None,
                   val_fraction: float = 0.2, seed: int = 0, corrected_only: bool = False,
                   image_ext: str = ".jpg",
                   progress: Callable[[int, int], None] | None = None) -> Path:
        """Write a VOC dataset that ``python -m core train`` accepts; return its root.

        See :func:`core.annotation.voc_export.export_voc` for the arguments.
        """
        from core.annotation.voc_export import export_voc

        return export_voc(self, out, ids=ids, val_fraction=val_fraction, seed=seed,
                          corrected_only=corrected_only, image_ext=image_ext,
                          progress=progress)
