"""A project's own classes: names and colors, and the class edits that renumber masks.

A project's class list is an ordered tuple of :class:`ProjectClass` (a name and a color);
a mask's label ``k`` is the ``k``-th class, ``255`` is void. :func:`check_classes` is the
one validation of such a list (used when a project is created, opened or edited):

* 1 to 255 classes (labels 0..254; 255 is void);
* a name is stripped, non-empty, at most :data:`MAX_NAME` characters, on one line (the
  list is also written one name a line to ``class_names.txt``), not starting with ``#``
  (a comment there) and not labelme's ``__ignore__`` (the void label, not a class);
* names are distinct, also ignoring case, underscores and spacing (``"Cat"`` and
  ``"cat"``, ``"_background_"`` and ``"background"``): :func:`class_key`, the key that
  matches a project's classes to a model's by name;
* a color is three integers 0..255 (default: the VOC palette, a color not yet used).

A class edit (:class:`ClassEdit`) is the new list plus the renumbering of every mask of
the project: a 256-entry lookup table ``lut`` (label before -> label after). Adding,
renaming and recoloring change no label; moving a class renumbers the classes between;
merging and deleting a class renumber the classes after it, and its pixels become the
target class or void. Edits are pure functions here; :mod:`core.annotation.renumber`
applies one to a project's masks, crash-safe and undoable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.data.palette import VOC_PALETTE, VOID
from core.errors import DatasetError

__all__ = [
    "MAX_CLASSES",
    "MAX_NAME",
    "ClassEdit",
    "ClassListError",
    "ProjectClass",
    "add_class",
    "add_classes",
    "as_classes",
    "check_classes",
    "check_color",
    "check_name",
    "class_key",
    "delete_class",
    "make_classes",
    "map_by_name",
    "merge_classes",
    "move_class",
    "recolor_class",
    "recorded_classes",
    "rename_class",
    "undo_edit",
]

MAX_CLASSES = VOID
"""At most 255 classes: labels 0..254, 255 is void."""
MAX_NAME = 100
"""Longest class name, in characters."""
IGNORE_LABEL = "__ignore__"
Color = tuple[int, int, int]


class ClassListError(DatasetError):
    """A class list, a class name or a color is not acceptable (one clear line)."""


@dataclass(frozen=True)
class ProjectClass:
    """One class of a project.

    Attributes:
        name: Its name (see :func:`check_name`).
        color: ``(r, g, b)``, each 0..255.
    """

    name: str
    color: Color

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"name": self.name, "color": list(self.color)}

    @classmethod
    def from_dict(cls, d: object) -> ProjectClass:
        """Inverse of :meth:`to_dict`.

        Raises:
            ClassListError: Not a class object, or a bad name or color.
        """
        if not isinstance(d, dict):
            raise ClassListError(f"A class must be an object with a name and a color, got {d!r}")
        return cls(check_name(d.get("name")), check_color(d.get("color")))


def class_key(name: str) -> str:
    """The key names are compared by: case, underscores and spacing ignored."""
    return " ".join(str(name).replace("_", " ").split()).casefold()


def check_name(name: object, where: str = "") -> str:
    """A valid class name (stripped), else a :class:`ClassListError` saying why."""
    at = f" ({where})" if where else ""
    if not isinstance(name, str):
        raise ClassListError(f"A class name must be text, got {name!r}{at}")
    text = name.strip()
    if not text:
        raise ClassListError(f"A class name is empty{at}")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ClassListError(f"The class name {text!r} has a line break or control "
                             f"character{at}")
    if len(text) > MAX_NAME:
        raise ClassListError(f"The class name {text[:20]!r}… is {len(text)} characters long; "
                             f"at most {MAX_NAME}{at}")
    if text.startswith("#"):
        raise ClassListError(f"The class name {text!r} starts with '#', which class-name "
                             f"files read as a comment{at}")
    if text == IGNORE_LABEL:
        raise ClassListError(f"{IGNORE_LABEL!r} is labelme's void label (255), not a "
                             f"class{at}")
    return text


def check_color(color: object) -> Color:
    """``(r, g, b)`` from three integers 0..255, else a :class:`ClassListError`."""
    try:
        values = [v for v in color]  # type: ignore[union-attr]
    except TypeError:
        values = []
    if len(values) != 3 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                   and 0 <= int(v) <= 255 for v in values):
        raise ClassListError(f"A class color must be three integers 0..255, got {color!r}")
    return int(values[0]), int(values[1]), int(values[2])


def free_color(used: Iterable[Sequence[int]], start: int = 0) -> Color:
    """The first VOC palette color from index ``start`` on that is not in ``used``."""
    taken = {tuple(int(v) for v in c) for c in used}
    for i in [*range(start, VOID), *range(min(start, VOID))]:
        rgb = tuple(int(v) for v in VOC_PALETTE[i])
        if rgb not in taken:
            return rgb  # type: ignore[return-value]
    return tuple(int(v) for v in VOC_PALETTE[start % VOID])  # type: ignore[return-value]


def check_classes(classes: Sequence[ProjectClass]) -> tuple[ProjectClass, ...]:
    """The validated class list (see the module docstring).

    Raises:
        ClassListError: No class, more than 255, a bad name, or two names that are the
            same but for case, underscores or spacing.
    """
    classes = tuple(classes)
    if not classes:
        raise ClassListError("A project needs at least one class")
    if len(classes) > MAX_CLASSES:
        raise ClassListError(f"{len(classes)} classes: a project has at most {MAX_CLASSES} "
                             "(labels 0..254; 255 is void)")
    seen: dict[str, str] = {}
    for i, c in enumerate(classes):
        if not isinstance(c, ProjectClass):
            raise ClassListError(f"Class {i} is not a ProjectClass: {c!r}")
        check_name(c.name, f"class {i}")
        check_color(c.color)
        key = class_key(c.name)
        if key in seen:
            same = "is named twice" if seen[key] == c.name else \
                f"and {seen[key]!r} differ only in case, underscores or spacing"
            raise ClassListError(f"The class {c.name!r} {same}; class names must be distinct")
        seen[key] = c.name
    return classes


def make_classes(names: Sequence[object],
                 colors: Sequence[Sequence[int]] | None = None) -> tuple[ProjectClass, ...]:
    """Classes from names (and colors; default: the VOC palette, label by label).

    A first name ``__ignore__`` (labelme's labels.txt) is dropped: it is the void label.

    Raises:
        ClassListError: See :func:`check_classes`; or the colors do not match the names.
    """
    names = list(names)
    if names and isinstance(names[0], str) and names[0].strip() == IGNORE_LABEL:
        names = names[1:]
        colors = list(colors)[1:] if colors is not None else None
    if len(names) > MAX_CLASSES:
        raise ClassListError(f"{len(names)} classes: a project has at most {MAX_CLASSES} "
                             "(labels 0..254; 255 is void)")
    if colors is not None and len(colors) != len(names):
        raise ClassListError(f"{len(names)} class names but {len(colors)} colors")
    out = []
    for i, name in enumerate(names):
        color = check_color(colors[i]) if colors is not None else \
            tuple(int(v) for v in VOC_PALETTE[i])
        out.append(ProjectClass(check_name(name, f"class {i}"), color))  # type: ignore[arg-type]
    return check_classes(out)


def as_classes(classes: Sequence[str] | Sequence[ProjectClass], *,
               strict: bool = False) -> tuple[ProjectClass, ...]:
    """Project classes from names (VOC colors) or :class:`ProjectClass` objects.

    ``strict`` (a new project): every rule of :func:`check_classes`. Else (a project as
    saved, possibly by an older version): the names as they are, 1..255 of them.

    Raises:
        ClassListError: The list breaks a rule.
    """
    items = list(classes)
    if items and all(isinstance(c, ProjectClass) for c in items):
        return check_classes(items) if strict else tuple(items)
    if strict:
        return make_classes(items)
    if not 0 < len(items) <= MAX_CLASSES:
        raise ClassListError(f"A project has 1..{MAX_CLASSES} classes, got {len(items)}")
    return tuple(ProjectClass(str(n), tuple(int(v) for v in VOC_PALETTE[i]))  # type: ignore[misc]
                 for i, n in enumerate(items))


def recorded_classes(names: list[str], recorded: object) -> tuple[ProjectClass, ...]:
    """The classes of a ``project.json``: its ``classes`` (names and colors) or, as saved
    before colors were recorded, its ``class_names`` with the VOC palette.

    Raises:
        ValueError, ClassListError: ``classes`` is malformed or disagrees with the names.
    """
    if recorded is None:
        return as_classes(names)
    if not isinstance(recorded, list):
        raise ValueError("'classes' is not a list")
    classes = tuple(ProjectClass.from_dict(c) for c in recorded)
    if [c.name for c in classes] != names:
        raise ValueError("'classes' and 'class_names' disagree")
    return as_classes(classes)


def map_by_name(source: Sequence[str], target: Sequence[str]) -> np.ndarray:
    """A 256-entry uint8 table: a ``source`` label to the ``target`` class of the same name.

    Names match by :func:`class_key`; unmatched labels (and labels beyond ``source``)
    become void (255), and 255 stays 255.
    """
    index = {class_key(n): i for i, n in enumerate(target)}
    lut = np.full(256, VOID, np.uint8)
    for k, name in enumerate(list(source)[:VOID]):
        j = index.get(class_key(name))
        if j is not None:
            lut[k] = j
    return lut


# --------------------------------------------------------------------------- edits


@dataclass(frozen=True, eq=False)
class ClassEdit:
    """A change of a project's class list and the renumbering of its masks.

    Attributes:
        kind: ``"add"``, ``"rename"``, ``"recolor"``, ``"move"``, ``"merge"``,
            ``"delete"`` or ``"undo"``.
        description: What it does, for the user (e.g. "Merged 'cat' into 'dog'").
        before: The class list it applies to.
        after: The class list it makes.
        origin: For each class of ``after``, its label in ``before`` (None: a new class).
        lut: 256 uint8 values: a label before the edit to the label after it.
    """

    kind: str
    description: str
    before: tuple[ProjectClass, ...]
    after: tuple[ProjectClass, ...]
    origin: tuple[int | None, ...]
    lut: np.ndarray = field(repr=False)

    @property
    def renumbers(self) -> bool:
        """Whether any label of a mask changes (masks must be rewritten)."""
        n = len(self.before)
        return not np.array_equal(self.lut[:n], np.arange(n, dtype=np.uint8))

    def inverse_lut(self) -> np.ndarray:
        """A label after the edit back to the label of the class it came from (new: void).

        Merged pixels go back to the merge target, deleted ones stay void or in the class
        they were given to: those cannot be told apart any more.
        """
        inv = np.full(256, VOID, np.uint8)
        for k, o in enumerate(self.origin):
            if o is not None:
                inv[k] = o
        return inv

    def moves(self) -> list[tuple[str, int, int]]:
        """``(name, label before, label after)`` of every class whose label changes."""
        out = []
        for k, o in enumerate(self.origin):
            if o is not None and o != k and self.before[o].name == self.after[k].name:
                out.append((self.after[k].name, o, k))
        return out

    def summary(self) -> str:
        """The description with the renumbering in words (never a silent renumbering)."""
        moves = self.moves()
        if not moves:
            return self.description
        shown = ", ".join(f"{n!r} {a}→{b}" for n, a, b in moves[:8])
        more = f" and {len(moves) - 8} more" if len(moves) > 8 else ""
        return f"{self.description}; renumbered {shown}{more}"

    def to_dict(self) -> dict:
        """JSON-ready form (the class-edit plan and the undo record hold it)."""
        return {"kind": self.kind, "description": self.description,
                "before": [c.to_dict() for c in self.before],
                "after": [c.to_dict() for c in self.after],
                "origin": list(self.origin), "lut": [int(v) for v in self.lut]}

    @classmethod
    def from_dict(cls, d: object) -> ClassEdit:
        """Inverse of :meth:`to_dict`.

        Raises:
            ClassListError: Not a class edit.
        """
        try:
            if not isinstance(d, dict):
                raise TypeError("not an object")
            before = check_classes([ProjectClass.from_dict(c) for c in d["before"]])
            after = check_classes([ProjectClass.from_dict(c) for c in d["after"]])
            origin = tuple(None if o is None else int(o) for o in d["origin"])
            lut = np.array([int(v) for v in d["lut"]], np.int64)
            if len(origin) != len(after) or lut.shape != (256,) or \
                    lut.min() < 0 or lut.max() > 255:
                raise ValueError("origin or lut of the wrong size")
            return cls(str(d["kind"]), str(d["description"]), before, after, origin,
                       lut.astype(np.uint8))
        except (KeyError, TypeError, ValueError) as exc:
            raise ClassListError(f"Not a class edit: {exc}") from exc


def _edit(kind: str, description: str, before: Sequence[ProjectClass],
          after: Sequence[ProjectClass], origin: Sequence[int | None],
          fate: dict[int, int | None] | None = None) -> ClassEdit:
    """Build the edit; ``fate``: a removed label -> the label before it goes to (None: void)."""
    before, after = tuple(before), check_classes(after)
    lut = np.full(256, VOID, np.uint8)
    new_of = {o: k for k, o in enumerate(origin) if o is not None}
    for old in range(len(before)):
        if old in new_of:
            lut[old] = new_of[old]
        else:
            target = (fate or {}).get(old)
            lut[old] = VOID if target is None else new_of[target]
    return ClassEdit(kind, description, before, after, tuple(origin), lut)


def _index(classes: Sequence[ProjectClass], i: int) -> int:
    if not isinstance(i, (int, np.integer)) or not 0 <= int(i) < len(classes):
        raise ClassListError(f"There is no class {i!r} (the project has {len(classes)})")
    return int(i)


def add_class(classes: Sequence[ProjectClass], name: str,
              color: Sequence[int] | None = None) -> ClassEdit:
    """Append a class (label ``len(classes)``); default color: a VOC color not yet used."""
    classes = check_classes(classes)
    name = check_name(name)
    rgb = check_color(color) if color is not None else \
        free_color([c.color for c in classes], len(classes))
    after = (*classes, ProjectClass(name, rgb))
    return _edit("add", f"Added the class {name!r} (label {len(classes)})", classes, after,
                 [*range(len(classes)), None])


def add_classes(classes: Sequence[ProjectClass], names: Sequence[str]) -> ClassEdit:
    """Append several classes as one edit (e.g. the unknown labels of a labelme file)."""
    classes = check_classes(classes)
    if not names:
        raise ClassListError("No class to add")
    after = list(classes)
    for name in names:
        after.append(ProjectClass(check_name(name),
                                  free_color([c.color for c in after], len(after))))
    shown = ", ".join(repr(c.name) for c in after[len(classes):])
    return _edit("add", f"Added {shown} (labels {len(classes)}..{len(after) - 1})"
                 if len(names) > 1 else f"Added the class {shown} (label {len(classes)})",
                 classes, after, [*range(len(classes)), *([None] * len(names))])


def rename_class(classes: Sequence[ProjectClass], index: int, name: str) -> ClassEdit:
    """Rename a class (no label changes)."""
    classes = check_classes(classes)
    i, name = _index(classes, index), check_name(name)
    after = list(classes)
    after[i] = ProjectClass(name, classes[i].color)
    return _edit("rename", f"Renamed {classes[i].name!r} to {name!r}", classes, after,
                 range(len(classes)))


def recolor_class(classes: Sequence[ProjectClass], index: int, color: Sequence[int]) -> ClassEdit:
    """Give a class another color (no label changes)."""
    classes = check_classes(classes)
    i, rgb = _index(classes, index), check_color(color)
    after = list(classes)
    after[i] = ProjectClass(classes[i].name, rgb)
    return _edit("recolor", f"Recolored {classes[i].name!r}", classes, after,
                 range(len(classes)))


def move_class(classes: Sequence[ProjectClass], index: int, to: int) -> ClassEdit:
    """Move a class to label ``to``; the classes between shift by one."""
    classes = check_classes(classes)
    i, j = _index(classes, index), _index(classes, to)
    order = list(range(len(classes)))
    order.insert(j, order.pop(i))
    return _edit("move", f"Moved {classes[i].name!r} from label {i} to {j}", classes,
                 [classes[o] for o in order], order)


def merge_classes(classes: Sequence[ProjectClass], source: int, target: int) -> ClassEdit:
    """Merge class ``source`` into ``target``: its pixels become ``target``, it goes."""
    classes = check_classes(classes)
    s, t = _index(classes, source), _index(classes, target)
    if s == t:
        raise ClassListError(f"Cannot merge {classes[s].name!r} into itself")
    if len(classes) == 1:
        raise ClassListError("A project needs at least one class")
    order = [k for k in range(len(classes)) if k != s]
    return _edit("merge", f"Merged {classes[s].name!r} into {classes[t].name!r}", classes,
                 [classes[o] for o in order], order, {s: t})


def delete_class(classes: Sequence[ProjectClass], index: int,
                 into: int | None = None) -> ClassEdit:
    """Delete a class; its pixels become void (``into`` None) or class ``into``."""
    classes = check_classes(classes)
    i = _index(classes, index)
    if into is not None:
        return replace_kind(merge_classes(classes, i, into), "delete",
                            f"Deleted {classes[i].name!r} (its pixels became "
                            f"{classes[int(into)].name!r})")
    if len(classes) == 1:
        raise ClassListError("A project needs at least one class")
    order = [k for k in range(len(classes)) if k != i]
    return _edit("delete", f"Deleted {classes[i].name!r} (its pixels became void)", classes,
                 [classes[o] for o in order], order, {i: None})


def replace_kind(edit: ClassEdit, kind: str, description: str) -> ClassEdit:
    """The same edit with another kind and description."""
    return ClassEdit(kind, description, edit.before, edit.after, edit.origin, edit.lut)


def undo_edit(edit: ClassEdit) -> ClassEdit:
    """The edit that takes ``edit``'s class list back (masks: :meth:`ClassEdit.inverse_lut`)."""
    origin: list[int | None] = [None] * len(edit.before)
    for old in range(len(edit.before)):
        k = int(edit.lut[old])
        if k != VOID and k < len(edit.after) and edit.origin[k] == old:
            origin[old] = k
    return ClassEdit("undo", f"Undid: {edit.description}", edit.after, edit.before,
                     tuple(origin), edit.inverse_lut())
