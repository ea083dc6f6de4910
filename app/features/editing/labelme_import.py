"""File > Import labelme…: labelme JSON annotations become project masks.

Shapes are rasterized exactly as labelme does (:mod:`core.labelme`) against the model's
fixed class list: an unknown label is an error naming the label, the file and the known
labels, never a silent renumbering. labelme's ``_background_`` stands for class 0 when
that class is a background class. Imported masks are written to the project at once
(atomically); an image with unsaved edits gets the import as an undoable restart instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.state.display import BACKGROUND_NAMES


@dataclass
class ImportReport:
    """What an import did."""

    images: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def label_map(class_names: Sequence[str]) -> Any:
    """The model's classes as a labelme label list (``_background_`` = a background class 0)."""
    from core.labelme import BACKGROUND_LABEL, LabelMap

    lm = LabelMap.from_names(list(class_names))
    first = class_names[0] if class_names else ""
    if first != BACKGROUND_LABEL and first.lower() in BACKGROUND_NAMES:
        lm = lm.with_alias(BACKGROUND_LABEL, first)
    return lm


def read_annotation(path: Path, class_names: Sequence[str]) -> tuple[Path | None, np.ndarray,
                                                                       np.ndarray]:
    """``(image file or None when only embedded, rgb, mask)`` of one labelme file.

    Raises:
        core.labelme.LabelmeError: Malformed file or unknown label (a clear message).
    """
    from core.labelme import read_labelme, shapes_to_label

    lf = read_labelme(path)
    mask = shapes_to_label(lf.shape, lf.shapes, label_map(class_names), lf.path)
    image = (path.parent / lf.image_path) if lf.image_path else None
    return (image.resolve() if image is not None and image.is_file() else None), lf.image, mask


def import_files(editing: Any, paths: Sequence[str | os.PathLike[str]]) -> ImportReport:
    """Import labelme files into the editor's project (see the module docstring)."""
    from core.data.imageio import write_image
    from core.errors import FCNStudioError

    manager = editing.manager
    names = manager.state.class_names()
    report = ImportReport()
    if not names:
        report.errors.append("Load a model first: labelme labels are matched to its classes")
        return report
    for p in paths:
        path = Path(p)
        try:
            image, rgb, mask = read_annotation(path, names)
            if image is None:  # only embedded imageData: keep a copy in the project
                project = manager.projects.ensure(path, names)
                image = project.folder / "JPEGImages" / f"{path.stem}.png"
                write_image(image, rgb)
            session = next((s for s in manager.sessions.values()
                            if s.path is not None and s.path.resolve() == image.resolve()), None)
            if session is not None and session.dirty:
                session.restart(mask, f"labelme {path.name}", whole=True)
            else:
                project = manager.projects.ensure(image, names)
                project.save_mask(manager.projects.image_id(image), mask, True)
                if session is not None:
                    session.restart(mask, f"labelme {path.name}", whole=True)
                    manager.save(session)
        except (FCNStudioError, OSError, ValueError) as exc:
            report.errors.append(str(exc))
            continue
        report.images.append(image)
    return report


def open_imported(nav: Any, images: Sequence[Path]) -> None:
    """Add the imported images to the file list (``nav``, a Navigator), show the first one."""
    if not images:
        return
    nav.open_paths(list(images), add=True)
    first = Path(images[0]).resolve()
    for i, entry in enumerate(nav.entries):
        if entry.image.resolve() == first:
            if i != nav.index:
                nav.go(i)
            break


def import_dialog(editing: Any, paths: Sequence[str] | None = None) -> ImportReport | None:
    """Ask for labelme JSON files (unless given), import them, report in the Messages dock.

    ``editing`` is the installed editor (:class:`~app.features.editing.install.EditingUi`).
    """
    ctx, host = editing.context, editing.host
    if paths is None:
        from PySide6.QtWidgets import QFileDialog

        paths, _ = QFileDialog.getOpenFileNames(
            host.widget(), "Import labelme Annotations", ctx.settings.last_dir,
            "labelme JSON (*.json);;All files (*)")
        if not paths:
            return None
    report = import_files(editing, paths)
    notes = ctx.notifications
    for text in report.errors:
        notes.notify(f"labelme import: {text}", "error")
    if report.images:
        notes.notify(f"Imported {len(report.images)} labelme annotation(s) into the project "
                     f"{editing.projects.folder}")
    if report.errors:
        host.show_dock("messages")
    open_imported(ctx.documents, report.images)
    editing.manager.reload_current()
    return report
