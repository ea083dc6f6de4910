"""Class edits of the open project, for every feature: save first, apply, announce.

A class edit renumbers every mask of the project on disk (crash-safe:
:mod:`core.annotation.renumber`), so every unsaved mask is saved first (or nothing is
edited), and the new classes are announced through the project manager's
:class:`~app.state.project_classes.ProjectClasses` (the editor then lets go of the masks
it holds in the old numbering and loads them again). Each edit is said in Messages with
its renumbering (never a silent one); the last one can be undone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.services.projects import ProjectManager


@dataclass(frozen=True)
class LabelOffer:
    """Labels a file has and the project's classes lack, offered to be added.

    Attributes:
        labels: The labels, in first-seen order.
        source: The file they were found in (a labelme JSON).
        retry: What to do once they are classes (import the file again).
    """

    labels: tuple[str, ...]
    source: Path
    retry: Callable[[], Any]


def offer_labels(projects: ProjectManager, labels: Sequence[str], source: Path,
                 retry: Callable[[], Any]) -> None:
    """Offer to add ``labels`` to the project's classes (the Project dock shows it)."""
    projects.labelsOffered.emit(LabelOffer(tuple(labels), Path(source), retry))


def accept_offers(projects: ProjectManager, offers: Sequence[LabelOffer]) -> Any | None:
    """Add the offered labels that are not classes yet (one class edit), then retry each
    offer's import; the edit's result, or None when nothing was added."""
    from core.annotation.classes import add_classes, class_key

    project = projects.project
    if project is None or not offers:
        return None
    known = {class_key(n) for n in project.class_names}
    labels: list[str] = []
    for offer in offers:
        for label in offer.labels:
            if class_key(label) not in known:
                known.add(class_key(label))
                labels.append(label)
    result = apply_class_edit(projects, add_classes(project.classes, labels)) if labels \
        else None
    if labels and result is None:
        return None
    for offer in offers:
        offer.retry()
    return result


def _errors() -> tuple[type[BaseException], ...]:
    from core.errors import FCNStudioError

    return (FCNStudioError, OSError, ValueError)


def last_edit(projects: ProjectManager) -> Any | None:
    """The open project's last class edit, when it can be undone (a ``ClassEdit``)."""
    if projects.project is None:
        return None
    from core.annotation.renumber import undo_info

    return undo_info(projects.project)


def apply_class_edit(projects: ProjectManager, edit: Any) -> Any | None:
    """Save the masks, apply ``edit`` to the open project, announce it.

    Returns:
        The core's ``EditResult``, or None (with a message) when nothing was changed or
        the edit could not be finished (then it is finished when the project is next
        opened; the project is opened again at once if it can be).
    """
    from core.annotation.renumber import apply_class_edit as apply

    return _run(projects, lambda project: apply(project, edit))


def undo_class_edit(projects: ProjectManager) -> Any | None:
    """Take the open project's last class edit back (see :func:`apply_class_edit`)."""
    from core.annotation.renumber import undo_class_edit as undo

    return _run(projects, undo)


def _run(projects: ProjectManager, change: Callable[[Any], Any]) -> Any | None:
    notify = projects.notifications.notify
    if projects.project is None:
        notify("Open or make a project first (File > New Project…)", "warning")
        return None
    if not projects.save_pending():
        notify("Classes not changed: some masks could not be saved first (see above)",
               "error")
        return None
    try:
        result = change(projects.project)
    except _errors() as exc:
        notify(f"Classes not changed: {exc}", "error")
        projects.reload()  # (finishes an edit committed before the error, if it can)
        return None
    projects.announce_classes(result)
    counts = []
    if result.masks:
        counts.append(f"{result.masks} mask(s) rewritten")
    if result.journals:
        counts.append(f"{result.journals} stroke journal(s) renumbered")
    if result.approximate:
        counts.append(f"{result.approximate} mask(s) saved since the edit were renumbered "
                      "back: their merged or deleted pixels stay where the edit put them")
    notify(f"{result.edit.summary()}" + (f" ({'; '.join(counts)})" if counts else ""))
    return result
