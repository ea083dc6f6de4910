"""Every key sequence of the main window is bound once: no duplicate or ambiguous shortcuts.

Qt gives a key that two enabled shortcuts of overlapping contexts hold to neither of them
("QAction::event: Ambiguous shortcut overload"), so a duplicate silently kills both. The
audit collects every QAction (whether in a menu, a toolbar, added to the window or to a
widget) and every QShortcut of the window, in several states of the app (annotating or
not, the viewer or another tab in front).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from app.shell.main_window import MainWindow

Context = Qt.ShortcutContext
PORTABLE = QKeySequence.SequenceFormat.PortableText


@dataclass(frozen=True)
class Binding:
    """One key sequence registered by one owner (an action registers each of its keys)."""

    keys: tuple[int, ...]  # the combinations of the sequence, e.g. (Ctrl+K, Ctrl+C)
    text: str
    owner: str
    context: Context
    widgets: tuple[QWidget, ...]  # where the shortcut lives (its scope)


def _combos(sequence: QKeySequence) -> tuple[int, ...]:
    return tuple(sequence[i].toCombined() for i in range(sequence.count()))


def _widgets(obj: QAction | QShortcut) -> tuple[QWidget, ...]:
    if isinstance(obj, QShortcut):
        parent = obj.parent()
        return (parent,) if isinstance(parent, QWidget) else ()
    return tuple(w for w in obj.associatedObjects() if isinstance(w, QWidget))


def bindings(window: MainWindow) -> list[Binding]:
    """Every key sequence of every action and shortcut object of ``window``."""
    owners: dict[int, QAction | QShortcut] = {}
    for obj in [*window.findChildren(QAction), *window.findChildren(QShortcut)]:
        owners[id(obj)] = obj
    for widget in [window, *window.findChildren(QWidget)]:
        for action in QWidget.actions(widget):  # (MainWindow.actions is its Actions)
            owners[id(action)] = action
    out = []
    for obj in owners.values():
        sequences = obj.shortcuts() if isinstance(obj, QAction) else obj.keys()
        name = obj.text() if isinstance(obj, QAction) else obj.objectName() or repr(obj)
        for sequence in sequences:  # each one is registered, duplicates included
            if not sequence.isEmpty():
                out.append(Binding(_combos(sequence), sequence.toString(PORTABLE),
                                   name.replace("&", ""), obj.shortcutContext(),
                                   _widgets(obj)))
    return out


def _contains(outer: QWidget, inner: QWidget) -> bool:
    return outer is inner or outer.isAncestorOf(inner)


def overlap(a: Binding, b: Binding) -> bool:
    """Whether both can be live for the same key press (Qt then calls it ambiguous)."""
    wide = (Context.WindowShortcut, Context.ApplicationShortcut)
    if a.context in wide or b.context in wide:
        if a.context == Context.ApplicationShortcut or b.context == Context.ApplicationShortcut:
            return True
        windows_a = {id(w.window()) for w in a.widgets}
        windows_b = {id(w.window()) for w in b.widgets}
        return not windows_a or not windows_b or bool(windows_a & windows_b)
    for wa in a.widgets:
        for wb in b.widgets:
            if (a.context == Context.WidgetWithChildrenShortcut and _contains(wa, wb)) or \
                    (b.context == Context.WidgetWithChildrenShortcut and _contains(wb, wa)) or \
                    wa is wb:
                return True
    return False


def clashes(window: MainWindow) -> list[str]:
    """Pairs of bindings with the same sequence (or one a prefix of the other) that overlap."""
    found = bindings(window)
    problems = []
    for i, a in enumerate(found):
        for b in found[i + 1:]:
            n = min(len(a.keys), len(b.keys))
            if a.keys[:n] == b.keys[:n] and overlap(a, b):
                problems.append(f"{a.text!r}: {a.owner!r} and {b.owner!r}")
    return problems


def test_redo_holds_each_of_its_keys_once(window: MainWindow) -> None:
    redo = window.editing.actions.redo
    texts = [k.toString(PORTABLE) for k in redo.shortcuts()]
    assert "Ctrl+Shift+Z" in texts and "Ctrl+Y" in texts
    assert len(texts) == len(set(texts)), texts


def test_no_key_sequence_is_bound_twice(qtbot: QtBot, editor: MainWindow) -> None:
    win = editor
    assert len(bindings(win)) >= 40  # the audit does see the window's shortcuts
    assert clashes(win) == []  # annotate mode off, the viewer in front
    win.editing.manager.set_annotating(True)
    assert win.viewer.canvas.isVisible()
    assert clashes(win) == []  # the editor's canvas keys are live
    win.tabs.setCurrentWidget(win.compare)
    assert clashes(win) == []
    win.tabs.setCurrentWidget(win.viewer)
    win.editing.manager.set_annotating(False)
    win.actions.shortcuts.trigger()  # the shortcuts dialog (a window of its own) is open
    qtbot.waitExposed(win.shortcuts_dialog)
    assert clashes(win) == []


def test_the_audit_finds_a_duplicate(window: MainWindow) -> None:
    extra = QAction("Another Fit", window)
    extra.setShortcuts([QKeySequence("F"), QKeySequence("Ctrl+Alt+F"), QKeySequence("Ctrl+Alt+F")])
    window.addAction(extra)
    problems = clashes(window)
    assert "'F': 'Fit to Window' and 'Another Fit'" in problems or \
        "'F': 'Another Fit' and 'Fit to Window'" in problems
    assert "'Ctrl+Alt+F': 'Another Fit' and 'Another Fit'" in problems
