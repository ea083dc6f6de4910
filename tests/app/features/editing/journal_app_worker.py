"""The real app painting until it is killed, for the journal's SIGKILL test
(``python -m tests.app.features.editing.journal_app_worker FOLDER AUTOSAVE_MS``).

It opens FOLDER in a MainWindow (offscreen; the model from ``FCN_STUDIO_MODEL``), starts
an empty mask on the first image and, step after step on the event loop, paints brush
strokes with mouse events on the viewer (or undoes the last one), autosaving every
AUTOSAVE_MS. For each step it prints ``pending <digest>`` (the mask the step leads to,
before the step is pushed on the undo stack and so journaled) and ``done <digest>`` once
it is. A digest is the hex blake2b of the mask's bytes.
"""

from __future__ import annotations

import hashlib
import os
import sys

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEventLoop, QPoint, QPointF, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

LEFT = Qt.MouseButton.LeftButton
NO_MODIFIER = Qt.KeyboardModifier.NoModifier


def digest(mask: np.ndarray) -> str:
    """The digest printed for a mask."""
    return hashlib.blake2b(np.ascontiguousarray(mask).tobytes(), digest_size=16).hexdigest()


def main(folder: str, autosave_ms: int) -> None:
    """Paint until killed."""
    app = QApplication(sys.argv[:1])
    from app.shell.main_window import MainWindow

    win = MainWindow()
    win.resize(1280, 800)
    win.show()
    loop = QEventLoop()
    win.controller.resultReady.connect(loop.quit)
    win.start([folder])
    loop.exec()
    canvas = win.viewer.canvas
    canvas.set_zoom(4.0)
    canvas.centerOn(QPointF(60, 45))
    manager, tools = win.editing.manager, win.editing.tools
    session = manager.start("empty")
    assert session is not None
    tools.set_tool("brush")
    viewport = canvas.viewport()
    states = [digest(session.labels)]
    base = session.stack.index()  # states[k] is the mask at undo index base + k
    rng = np.random.default_rng(5)

    def pos(x: float, y: float) -> QPoint:
        return canvas.mapFromScene(QPointF(x + 0.5, y + 0.5))

    def step() -> None:
        try:
            one_step()
        except BaseException:  # a failed step ends the worker (not a hang)
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            os._exit(3)
        QTimer.singleShot(10, step)

    def one_step() -> None:
        points = [(0.0, 0.0)]
        if len(states) > 2 and rng.random() < 0.2:
            print(f"pending {states[-2]}", flush=True)
            manager.undo_group.undo()
            states.pop()
        else:
            tools.set_class(int(rng.integers(1, 4)))
            tools.set_size(int(rng.integers(1, 8)))
            points = rng.uniform((5, 5), (115, 85), (int(rng.integers(2, 5)), 2))
            QTest.mousePress(viewport, LEFT, NO_MODIFIER, pos(*points[0]))
            for p in points[1:]:
                QTest.mouseMove(viewport, pos(*p))
            print(f"pending {digest(session.labels)}", flush=True)  # painted, not pushed
            QTest.mouseRelease(viewport, LEFT, NO_MODIFIER, pos(*points[-1]))
            if session.stack.index() == base + len(states):  # pushed (else nothing changed)
                states.append(digest(session.labels))
        if states[-1] != digest(session.labels) or session.stack.index() != base + len(states) - 1:
            raise AssertionError(f"undo index {session.stack.index()}, {len(states)} states, "
                                 f"stroke in progress: {tools.busy}, viewport "
                                 f"{viewport.size()}, last point {points[-1]}")
        print(f"done {states[-1]}", flush=True)

    win.editing.projects.timer.start(autosave_ms)
    print(f"ready {base}", flush=True)
    QTimer.singleShot(0, step)
    app.exec()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
