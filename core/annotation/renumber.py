"""Class edits applied to a project: every mask renumbered, crash-safe, the last one undoable.

A class edit (:class:`~core.annotation.classes.ClassEdit`) changes the class list and, for
a move, merge or delete, the labels of every saved mask and of every stroke journal. Those
are many files; a process killed among them must not leave some masks in the old
numbering and some in the new. So an edit runs as a small journal of its own::

    .classedit.new/                     being prepared (removed when found: nothing changed)
    .classedit/plan.json                the edit (classes before and after, the lut) and
                                        the images to rewrite; state "prepared" or "done"
    .classedit/work/SegmentationClass/  the masks as they were (hard links, else copies)
    .classedit/work/.journal/           the stroke journals as they were
    .classedit/work/target/             exact new masks (an undo restoring masks as saved)
    .classundo/                         the last finished edit, kept to undo it

1. *Prepare*: link every mask and journal into ``.classedit.new/work`` and write the plan;
   renaming ``.classedit.new`` to ``.classedit`` commits the edit.
2. *Apply*: each mask is rewritten from its kept copy (``lut[old]``) with its corrections
   (:meth:`Project.rewrite_mask`, itself atomic), each journal is rebuilt over the new
   mask; then ``project.json`` and ``class_names.txt`` get the new classes. Every step
   reads only the kept copies, so it can run again: :meth:`Project.open` finishes an edit
   it finds in ``.classedit`` (:func:`recover`), and removes ``.classedit.new``.
3. *Done*: the plan records the digests of the masks written, and ``.classedit`` becomes
   ``.classundo`` (replacing the one before).

Undo (:func:`undo_class_edit`) is itself a class edit: masks unchanged since the edit get
their kept copies back byte for byte; masks saved since are renumbered back with
:meth:`ClassEdit.inverse_lut` (pixels of a merged or deleted class stay where the edit put
them: that cannot be told apart any more, and the result says how many masks that was).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.annotation.classes import ClassEdit, ClassListError, undo_edit
from core.annotation.journal import JOURNAL_DIR, JOURNAL_SUFFIX, Journal
from core.annotation.saves import file_digest
from core.atomic import atomic_write_bytes, atomic_write_text
from core.data.imageio import image_size, read_mask
from core.errors import DatasetError, FCNStudioError
from core.fileio import describe_os_error, is_regular_file
from core.jsonio import read_json

if TYPE_CHECKING:
    from core.annotation.project import Project

__all__ = ["EDIT_DIR", "UNDO_DIR", "EditResult", "apply_class_edit", "recover",
           "undo_class_edit", "undo_info"]

EDIT_DIR, NEW_DIR, UNDO_DIR = ".classedit", ".classedit.new", ".classundo"
PLAN = "plan.json"
FORMAT = "fcn-studio-classedit/1"
MASKS, TARGETS = "SegmentationClass", "target"


@dataclass(frozen=True)
class EditResult:
    """What a class edit did.

    Attributes:
        edit: The edit applied.
        masks: Saved masks rewritten.
        journals: Stroke journals with unsaved strokes renumbered.
        approximate: (An undo) masks saved after the edit, renumbered back by the inverse
            table: their pixels of a merged or deleted class did not come back.
        recovered: The edit was cut off by a crash and finished when the project opened.
    """

    edit: ClassEdit
    masks: int = 0
    journals: int = 0
    approximate: int = 0
    recovered: bool = False


def _rmtree(path: Path) -> None:
    if os.path.lexists(path):
        shutil.rmtree(path)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _keep(src: Path, dst: Path) -> None:
    """``dst`` becomes the file ``src`` is now: a hard link, else a copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # no hard links here (FAT, some shares)
        atomic_write_bytes(dst, src.read_bytes())


def _journal_path(folder: Path, image_id: str) -> Path:
    return folder / JOURNAL_DIR / f"{image_id}{JOURNAL_SUFFIX}"


def _read_plan(folder: Path) -> dict:
    d = read_json(folder / PLAN, DatasetError, "class edit plan")
    if not isinstance(d, dict) or d.get("format") != FORMAT or \
            not isinstance(d.get("images"), dict):
        raise DatasetError(f"{folder / PLAN} is not a class edit plan")
    return d


def _same_classes(project: Project, classes: tuple) -> bool:
    return tuple(project.classes) == tuple(classes)


# --------------------------------------------------------------------------- applying


def apply_class_edit(project: Project, edit: ClassEdit) -> EditResult:
    """Apply ``edit`` to the project: its classes and every mask and journal (see the
    module docstring); the edit becomes the one :func:`undo_class_edit` takes back.

    Save the masks being edited first: a journal's unsaved strokes are renumbered too,
    but an editor holding masks in the old numbering must let go of them.

    Raises:
        DatasetError: The edit is not for the project's current classes, or a file
            cannot be read or written (a kill or an error before the commit leaves the
            project as it was; after it, the next :meth:`Project.open` finishes it).
    """
    recover(project)
    if not _same_classes(project, edit.before):
        raise DatasetError("The class edit was made for another class list than the "
                           f"project's ({', '.join(project.class_names)})")
    _prepare(project, edit, undo=False, exact={})
    return _finish(project)


def recover(project: Project) -> EditResult | None:
    """Finish a class edit cut off by a crash (called by :meth:`Project.open`).

    Returns:
        The edit finished, or None when there was none.

    Raises:
        DatasetError: It cannot be finished (a file cannot be written, a malformed plan).
    """
    folder = project.folder
    with contextlib.suppress(OSError):
        _rmtree(folder / NEW_DIR)  # an edit never committed: nothing was changed
    if not os.path.lexists(folder / EDIT_DIR):
        return None
    try:
        result = _finish(project)
    except FCNStudioError as exc:
        raise DatasetError(f"A class edit of {folder} was interrupted and cannot be "
                           f"finished: {exc}") from exc
    return EditResult(result.edit, result.masks, result.journals, result.approximate, True)


def undo_info(project: Project) -> ClassEdit | None:
    """The last class edit of the project, when it can be undone (else None)."""
    try:
        plan = _read_plan(project.folder / UNDO_DIR)
        edit = ClassEdit.from_dict(plan["edit"])
    except (FCNStudioError, KeyError):
        return None
    if plan.get("state") != "done" or not _same_classes(project, edit.after):
        return None
    return edit


def undo_class_edit(project: Project) -> EditResult:
    """Take the last class edit back (see the module docstring); it cannot be redone.

    Raises:
        DatasetError: There is none to undo, or a file cannot be read or written.
    """
    recover(project)
    edit = undo_info(project)
    if edit is None:
        raise DatasetError("There is no class edit to undo (or the classes changed since)")
    undo = project.folder / UNDO_DIR
    written = _read_plan(undo).get("written", {})
    exact: dict[str, Path] = {}
    for image_id, digest in (written.items() if isinstance(written, dict) else ()):
        kept = undo / "work" / MASKS / f"{image_id}.png"
        with contextlib.suppress(FCNStudioError, OSError):
            if project.has_mask(image_id) and is_regular_file(kept) and \
                    file_digest(project.mask_path(image_id)) == digest:
                exact[image_id] = kept
    _prepare(project, undo_edit(edit), undo=True, exact=exact)
    result = _finish(project)
    lossy = edit.kind in ("merge", "delete")
    return EditResult(result.edit, result.masks, result.journals,
                      max(0, result.masks - len(exact)) if lossy else 0)


def _prepare(project: Project, edit: ClassEdit, *, undo: bool, exact: dict[str, Path]) -> None:
    """Keep the masks and journals as they are and commit the plan (``.classedit``)."""
    folder = project.folder
    new = folder / NEW_DIR
    images: dict[str, dict] = {}
    try:
        _rmtree(new)
        work = new / "work"
        work.mkdir(parents=True)
        if edit.renumbers or exact:
            for image_id in project.ids():
                mask = project.mask_path(image_id)
                journal = _journal_path(folder, image_id)
                has_mask, has_journal = is_regular_file(mask), is_regular_file(journal)
                if not (has_mask or has_journal):
                    continue
                if has_mask:
                    _keep(mask, work / MASKS / f"{image_id}.png")
                if has_journal:
                    _keep(journal, _journal_path(work, image_id))
                if image_id in exact:
                    _keep(exact[image_id], work / TARGETS / f"{image_id}.png")
                images[image_id] = {"exact": image_id in exact}
        plan = {"format": FORMAT, "state": "prepared", "undo": undo,
                "edit": edit.to_dict(), "images": images}
        atomic_write_text(new / PLAN, json.dumps(plan) + "\n")
        _fsync_dir(new)
        os.replace(new, folder / EDIT_DIR)  # the commit
        _fsync_dir(folder)
    except OSError as exc:
        with contextlib.suppress(OSError):
            _rmtree(new)
        raise DatasetError(f"Class edit not applied: cannot prepare it in {folder}: "
                           f"{describe_os_error(exc)}") from exc
    except FCNStudioError as exc:
        with contextlib.suppress(OSError):
            _rmtree(new)
        raise DatasetError(f"Class edit not applied: {exc}") from exc


def _finish(project: Project) -> EditResult:
    """Rewrite every mask and journal of the committed plan, record the classes, keep it
    for undo. Running it again after a kill gives the same result."""
    folder = project.folder
    edit_dir = folder / EDIT_DIR
    plan = _read_plan(edit_dir)
    try:
        edit = ClassEdit.from_dict(plan.get("edit"))
    except ClassListError as exc:
        raise DatasetError(f"{edit_dir / PLAN}: {exc}") from exc
    known = set(project.ids())
    masks = journals = 0
    if plan.get("state") != "done":
        if not (_same_classes(project, edit.before) or _same_classes(project, edit.after)):
            raise DatasetError(f"{edit_dir / PLAN} is for other classes than the project's")
        for image_id, spec in plan["images"].items():
            if image_id in known:
                m, j = _renumber(project, edit, edit_dir / "work", image_id,
                                 bool(isinstance(spec, dict) and spec.get("exact")))
                masks, journals = masks + m, journals + j
        project.set_classes(edit.after)
        plan["written"] = {i: file_digest(project.mask_path(i)) for i in plan["images"]
                           if i in known and project.has_mask(i)}
        plan["state"] = "done"
        atomic_write_text(edit_dir / PLAN, json.dumps(plan) + "\n")
    try:
        _rmtree(folder / UNDO_DIR)
        if plan.get("undo"):
            _rmtree(edit_dir)
        else:
            os.replace(edit_dir, folder / UNDO_DIR)
        _fsync_dir(folder)
    except OSError as exc:
        raise DatasetError(f"The class edit is done but {edit_dir} cannot be moved: "
                           f"{describe_os_error(exc)}") from exc
    return EditResult(edit, masks, journals)


def _renumber(project: Project, edit: ClassEdit, work: Path, image_id: str,
              exact: bool) -> tuple[int, int]:
    """Rewrite one image's mask and journal from the kept copies; ``(masks, journals)``."""
    kept = work / MASKS / f"{image_id}.png"
    old = read_mask(kept) if is_regular_file(kept) else None
    if exact:
        target = read_mask(work / TARGETS / f"{image_id}.png")
    else:
        target = edit.lut[old] if old is not None else None
    if target is not None:
        project.rewrite_mask(image_id, target)
    journal_copy = _journal_path(work, image_id)
    project_journal = _journal_path(project.folder, image_id)
    if not is_regular_file(journal_copy):
        with contextlib.suppress(OSError):
            project_journal.unlink(missing_ok=True)  # (over the old mask: stale now)
        return int(target is not None), 0
    if old is not None:
        shape = old.shape
    else:
        width, height = image_size(project.image_path(image_id))
        shape = (height, width)
    copy = Journal.open(work, image_id, shape)
    replayed, strokes = copy.replay(old)
    journal = Journal.open(project.folder, image_id, shape, num_classes=len(edit.after))
    full = (0, 0, shape[1], shape[0])
    try:
        project_journal.unlink(missing_ok=True)
    except OSError as exc:
        raise DatasetError(f"Cannot renumber {project_journal}: {describe_os_error(exc)}") \
            from exc
    if not strokes or replayed is None:
        return int(target is not None), 0
    if target is None:  # no saved mask: the journal's first record is the start
        journal.replay(None)
        journal.append(full, edit.lut[copy.start if copy.start is not None else replayed])
        journal.append(full, edit.lut[replayed])
    else:
        final = target.copy()
        changed = replayed != old
        final[changed] = edit.lut[replayed][changed]
        journal.clear_after_save(target)
        journal.append(full, np.ascontiguousarray(final, np.uint8))
    return int(target is not None), 1
