"""Where a new project's class list comes from: typed text, a labels file, labelme files.

labelme's conventions are kept: a labels.txt's first line ``__ignore__`` is the void label
(255, not a class) and ``_background_`` is class 0, the label of pixels no shape covers.
Class-name files are read by :func:`core.data.palette.read_class_names`, the one reader.
Every function returns validated :class:`~core.annotation.classes.ProjectClass` tuples or
raises :class:`~core.annotation.classes.ClassListError` with one clear line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from core.annotation.classes import (
    IGNORE_LABEL,
    ClassListError,
    ProjectClass,
    class_key,
    make_classes,
)
from core.data.palette import read_class_names
from core.errors import FCNStudioError
from core.jsonio import read_json

__all__ = [
    "BACKGROUND_LABEL",
    "classes_from_file",
    "classes_from_labelme",
    "classes_from_text",
    "labelme_files_beside",
    "labelme_labels",
]

BACKGROUND_LABEL = "_background_"
"""labelme's name of class 0 (pixels no shape covers)."""


def classes_from_text(text: str) -> tuple[ProjectClass, ...]:
    """Classes typed one a line (blank lines and ``#`` comments skipped; a first
    ``__ignore__`` dropped, as in a labels file)."""
    names = [ln.strip() for ln in str(text).splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    if not names:
        raise ClassListError("Type at least one class name, one a line")
    return make_classes(names)


def classes_from_file(path: str | os.PathLike[str]) -> tuple[ProjectClass, ...]:
    """Classes from a labels.txt or class_names.txt (labelme's conventions).

    Raises:
        ClassListError: Unreadable, empty, a repeated or bad name, too many classes.
    """
    try:
        names = read_class_names(path, error=ClassListError)
    except ClassListError:
        raise
    except FCNStudioError as exc:  # pragma: no cover - read_class_names raises ``error``
        raise ClassListError(str(exc)) from exc
    try:
        return make_classes(names)
    except ClassListError as exc:
        raise ClassListError(f"{path}: {exc}") from exc


def labelme_files_beside(images: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The labelme JSON files next to ``images`` (``photo.json`` beside ``photo.jpg``)."""
    out = []
    for image in images:
        p = Path(image).with_suffix(".json")
        if p.is_file():
            out.append(p)
    return out


def labelme_labels(files: Iterable[str | os.PathLike[str]]) -> tuple[list[str], list[str]]:
    """``(labels, problems)``: every shape label of the labelme files, in first-seen order,
    and one line per file that could not be read (those files are skipped)."""
    labels: list[str] = []
    seen: set[str] = set()
    problems: list[str] = []
    for f in files:
        try:
            d = read_json(f, ClassListError, "labelme file")
        except FCNStudioError as exc:
            problems.append(str(exc))
            continue
        shapes = d.get("shapes") if isinstance(d, dict) else None
        if not isinstance(shapes, list):
            problems.append(f"{f} is not a labelme file: no 'shapes' list")
            continue
        for s in shapes:
            label = s.get("label") if isinstance(s, dict) else None
            if isinstance(label, str) and label.strip() and label.strip() not in seen:
                seen.add(label.strip())
                labels.append(label.strip())
    return labels, problems


def classes_from_labelme(files: Sequence[str | os.PathLike[str]]
                         ) -> tuple[tuple[ProjectClass, ...], list[str]]:
    """Classes gathered from labelme files: ``_background_`` (class 0, what no shape
    covers) then the labels in alphabetical order; ``__ignore__`` is void, not a class.

    Returns:
        ``(classes, problems)``: problems name the files that were skipped.

    Raises:
        ClassListError: No labelme file, or no label in them, or the labels clash.
    """
    if not files:
        raise ClassListError("No labelme JSON file was found next to the images")
    labels, problems = labelme_labels(files)
    names = [BACKGROUND_LABEL]
    keys = {class_key(BACKGROUND_LABEL)}
    for label in sorted(labels, key=str.casefold):
        if label != IGNORE_LABEL and class_key(label) not in keys:
            keys.add(class_key(label))
            names.append(label)
    if len(names) == 1 and not labels:
        raise ClassListError(f"The {len(files)} labelme file(s) have no labelled shape"
                             + (f" ({problems[0]})" if problems else ""))
    return make_classes(names), problems
