"""labelme JSON annotations become project masks: File > Import labelme…, and on open.

Shapes are rasterized exactly as labelme does (:mod:`core.data.labelme`) against the
project's class list (the model's when a new default project is made for them): labels
match a class by name (``_background_`` stands for a background class 0; case,
underscores and spacing are ignored). A label the project does not have is offered: the
user may add it to the project's classes (one class edit, undoable), else the file is not
imported and the error names the label; labels are never renumbered silently. Imported
masks are written to the project at once (atomically) and shown at once (Annotate on); an
image with unsaved edits gets the import as an undoable restart instead.

A labelme file beside an image (``photo.json`` next to ``photo.jpg``) becomes the image's
mask when the image is opened and the project has none for it (:func:`import_beside`).
"""

from __future__ import annotations

import contextlib
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


def label_map(class_names: Sequence[str], labels: Sequence[str] = ()) -> Any:
    """The classes as a labelme label list: ``_background_`` = a background class 0, and
    each of ``labels`` that names a class but for case, underscores or spacing."""
    from core.annotation.classes import class_key
    from core.data.labelme import BACKGROUND_LABEL, IGNORE_LABEL, LabelMap

    lm = LabelMap.from_names(list(class_names))
    first = class_names[0] if class_names else ""
    if first != BACKGROUND_LABEL and first.lower() in BACKGROUND_NAMES:
        lm = lm.with_alias(BACKGROUND_LABEL, first)
    keys = {class_key(n): n for n in lm.class_names}
    for label in labels:
        if label not in lm.known and label not in lm.aliases and label != IGNORE_LABEL and \
                class_key(label) in keys:
            lm = lm.with_alias(label, keys[class_key(label)])
    return lm


def unknown_labels(labels: Sequence[str], class_names: Sequence[str]) -> list[str]:
    """The labels (in first-seen order) that are no class of ``class_names``."""
    lm = label_map(class_names, labels)
    out: list[str] = []
    for label in labels:
        if label not in lm.known and label not in lm.aliases and label not in out:
            out.append(label)
    return out


def read_annotation(path: Path, class_names: Sequence[str]) -> tuple[Path | None, np.ndarray,
                                                                       np.ndarray]:
    """``(image file or None when only embedded, rgb, mask)`` of one labelme file.

    Raises:
        core.data.labelme.LabelmeError: Malformed file or unknown label (a clear message).
    """
    from core.data.labelme import read_labelme, shapes_to_label

    lf = read_labelme(path)
    mask = shapes_to_label(lf.shape, lf.shapes, label_map(class_names,
                                                          [s.label for s in lf.shapes]),
                           lf.path)
    return _image_of(path, lf), lf.image, mask


def _image_of(path: Path, lf: Any) -> Path | None:
    image = (path.parent / lf.image_path) if lf.image_path else None
    return image.resolve() if image is not None and image.is_file() else None


def offer_labels(manager: Any, labels: list[str], file: Path) -> None:
    """The default answer to unknown labels: offer them in the Project dock (not modal),
    importing ``file`` again once they are added; the import stops for now."""
    from app.services.class_edits import offer_labels as offer

    offer(manager.projects, labels, file, lambda: retry_import(manager, file))


def retry_import(manager: Any, path: Path) -> bool:
    """Import ``path`` again (its labels were added); show it if it is the current image."""
    from core.errors import FCNStudioError

    try:
        image = import_file(manager, path)
    except (FCNStudioError, OSError, ValueError) as exc:
        manager.notifications.notify(f"labelme import: {exc}", "error")
        return False
    manager.notifications.notify(f"Imported {path.name} (labelme) into the project "
                                 f"{manager.projects.folder}")
    doc = manager.state.document
    if doc is not None and doc.path is not None and doc.path.resolve() == image.resolve():
        manager.reload_current()
        manager.set_annotating(True)
    return True


def _offer(manager: Any, path: Path, labels: list[str]) -> None:
    """Labels the project lacks: ``manager.ask_add_labels`` says add them now (True),
    never (False) or later (None: offered); unless added, raise naming them."""
    from core.data.labelme import LabelmeError

    projects = manager.projects
    names = manager.classes.mask_names()
    unknown = unknown_labels(labels, names)
    if not unknown:
        return
    fresh = [x for x in unknown if x not in manager.declined_labels]
    if fresh and projects.project is not None:
        answer = manager.ask_add_labels(unknown, path)
        if answer is True:
            from app.services.class_edits import apply_class_edit
            from core.annotation.classes import add_classes

            if apply_class_edit(projects, add_classes(projects.project.classes, unknown)):
                return
        elif answer is False:
            manager.declined_labels.update(unknown)
    shown = ", ".join(repr(x) for x in unknown)
    raise LabelmeError(
        f"{path}: label(s) {shown} are not classes of the project "
        f"({', '.join(repr(n) for n in names)}); add them to the project's classes (the "
        "Project dock offers it) or relabel the shapes in labelme. Nothing was renumbered")


def import_file(manager: Any, path: Path) -> Path:
    """Import one labelme file into the editor's project; return its image file.

    Raises:
        FCNStudioError: Malformed file, an unknown label not added, or no project.
    """
    from core.data.imageio import write_image
    from core.data.labelme import read_labelme, shapes_to_label
    from core.errors import FCNStudioError

    lf = read_labelme(path)
    image = _image_of(path, lf)
    model_names = manager.state.class_names()  # (a new default project gets them)
    if image is None:  # only embedded imageData: keep a copy in the project
        project = manager.projects.ensure(path, model_names)
        image = project.folder / "JPEGImages" / f"{path.stem}.png"
        write_image(image, lf.image)
    manager.projects.ensure(image, model_names)
    labels = [s.label for s in lf.shapes]
    _offer(manager, path, labels)
    names = manager.classes.mask_names()
    mask = shapes_to_label(lf.shape, lf.shapes, label_map(names, labels), lf.path)
    session = next((s for s in manager.sessions.values()
                    if s.path is not None and s.path.resolve() == image.resolve()), None)
    if session is not None and session.dirty:
        session.restart(mask, f"labelme {path.name}", whole=True)
        return image
    project = manager.projects.project
    image_id = manager.projects.image_id(image)
    project.save_mask(image_id, mask, True)
    if session is None:  # strokes journaled before the import are replaced
        with contextlib.suppress(FCNStudioError, OSError):  # (else discarded)
            project.journal(image_id).clear_after_save(mask)
    else:
        session.restart(mask, f"labelme {path.name}", whole=True)
        manager.save(session)
    return image


def import_files(editing: Any, paths: Sequence[str | os.PathLike[str]]) -> ImportReport:
    """Import labelme files into the editor's project (see the module docstring)."""
    from core.errors import FCNStudioError

    report = ImportReport()
    for p in paths:
        try:
            report.images.append(import_file(editing.manager, Path(p)))
        except (FCNStudioError, OSError, ValueError) as exc:
            report.errors.append(str(exc))
    return report


def import_beside(manager: Any, doc: Any) -> bool:
    """Import the labelme file beside ``doc``'s image as its mask (no saved mask yet), show
    it; a file that is no labelme file of this image is left alone."""
    from core.errors import FCNStudioError
    from core.jsonio import read_json

    path = doc.path.with_suffix(".json") if doc.path is not None else None
    if path is None or not path.is_file():
        return False
    try:
        d = read_json(path, FCNStudioError, "labelme file")
        target = (path.parent / str(d.get("imagePath") or "")).resolve() \
            if isinstance(d, dict) and isinstance(d.get("shapes"), list) else None
    except (FCNStudioError, OSError, ValueError):
        target = None
    if target != doc.path.resolve():
        return False
    try:
        import_file(manager, path)
    except (FCNStudioError, OSError, ValueError) as exc:
        manager.notifications.notify(f"labelme file beside {doc.title} not imported: {exc}",
                                     "error")
        return False
    manager.notifications.notify(f"{path.name} (labelme) is now the mask of {doc.title} in "
                                 f"the project {manager.projects.folder}")
    manager.reload_current()
    manager.set_annotating(True)  # shown at once
    return True


class BesideImports:
    """Imports the labelme file beside each image opened without a mask, once per image
    (until the classes change: :attr:`tried` is cleared then), after the opening is done.

    Attributes:
        tried: The image files tried.
    """

    def __init__(self, manager: Any) -> None:
        """For the editor's ``manager`` (an EditingManager)."""
        self.manager = manager
        self.tried: set[Path] = set()

    def schedule(self, doc: Any) -> None:
        """Try ``doc``'s labelme file once the event loop is back."""
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, lambda: self._run(doc))

    def _run(self, doc: Any) -> None:
        m = self.manager
        key = doc.path.resolve()
        if doc is m.state.document and key not in m.sessions and key not in self.tried:
            self.tried.add(key)
            import_beside(m, doc)


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
    session = editing.manager.session
    if session is not None and session.path is not None and \
            session.path.resolve() in {Path(p).resolve() for p in report.images}:
        editing.manager.set_annotating(True)  # the imported mask shows at once
    return report
