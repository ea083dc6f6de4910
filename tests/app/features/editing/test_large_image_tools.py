"""The correction tools on a 4000 x 3000 photo-like image: the wand, the superpixels of the
part in view, refining the part in view and a click correction each run in the correction
thread while the window keeps handling events (no GUI-thread stall over
:data:`MAX_STALL_S`), and each result is one undo step.

Not covered: the Statistics panel's first count after an edit runs on the GUI thread
(``MaskScores`` built in app/panels/stats_panel.py: about 0.15 s for three variants on a
4096x4096 mask since confusion matrices use 32-bit keys; it was 1 s)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPointF, QTimer
from pytestqt.qtbot import QtBot

from app.shell.main_window import MainWindow
from tests.app.conftest import click, vpos

W, H = 4000, 3000
MAX_STALL_S = 0.5
"""The longest the GUI thread may go without handling a timer event (2 shared CPU cores)."""


class Heartbeat:
    """A 10 ms timer on the GUI thread that records the longest gap between its ticks."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.worst = 0.0
        self.timer = QTimer(interval=10)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, now - self.last)
        self.last = now

    def watch(self, qtbot: QtBot, action: Callable[[], object],
              done: Callable[[], bool]) -> float:
        """Run ``action`` and wait for ``done``; the worst gap seen meanwhile."""
        self.worst, self.last = 0.0, time.perf_counter()
        self.timer.start()
        action()
        qtbot.waitUntil(done, timeout=120000)
        self.timer.stop()
        return max(self.worst, time.perf_counter() - self.last)


@pytest.fixture
def big_editor(qtbot: QtBot, app_env: None, tmp_path: Path) -> MainWindow:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    image = cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)  # smooth colour blobs
    folder = tmp_path / "big"
    folder.mkdir()
    cv2.imwrite(str(folder / "big.png"), image)
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    with qtbot.waitSignal(win.controller.resultReady, timeout=120000):
        win.start([folder])
    yield win
    win.controller.shutdown()


def test_the_tools_keep_the_window_responsive_on_4000_by_3000(
    qtbot: QtBot, big_editor: MainWindow
) -> None:
    win = big_editor
    session = win.editing.manager.start("8s")
    assert session is not None and session.labels.shape == (H, W)
    tools, edge, jobs = win.editing.tools, win.editing.edge, win.editing.corrections
    canvas = win.viewer.canvas
    canvas.set_zoom(1.0)
    canvas.centerOn(QPointF(2000, 1500))
    beat = Heartbeat()
    qtbot.waitUntil(lambda: not jobs.busy, timeout=60000)  # (the libraries' warm-up)
    stalls: dict[str, float] = {}

    tools.set_tool("wand")  # over 2 MP: in the correction thread
    count = session.stack.count()
    stalls["wand"] = beat.watch(qtbot, lambda: click(qtbot, win, 2000, 1500),
                                lambda: session.stack.count() == count + 1)

    # The Statistics panel recounts the scores against the edited mask 120 ms after an edit,
    # on the GUI thread (MaskScores over 12 MP: about 1 s on two busy cores; app/panels, not
    # the tools): let it pass so the gaps below are the tools' own.
    qtbot.wait(2000)
    stalls["superpixels"] = beat.watch(qtbot, lambda: tools.set_tool("superpixel"),
                                       lambda: edge.current_map() is not None)
    found = edge.current_map()
    assert found.box != (0, 0, W, H) and found.covers((1900, 1400, 2100, 1600))

    refiner = win.editing.refiner
    stalls["refine"] = beat.watch(qtbot, win.editing.actions.refine_visible.trigger,
                                  lambda: refiner.result is not None)
    count = session.stack.count()
    t0 = time.perf_counter()
    win.editing.actions.accept_preview.trigger()  # (on the GUI thread: the edit of 12 MP)
    stalls["refine accept"] = time.perf_counter() - t0
    assert session.stack.count() == count + 1

    clicks = win.editing.clicks
    tools.set_tool("correct")
    qtbot.waitUntil(lambda: not jobs.busy, timeout=60000)
    tools.set_class(2)
    stalls["click"] = beat.watch(
        qtbot, lambda: click(qtbot, win, 1990, 1490),
        lambda: clicks.result is not None and clicks._job is None)
    x0, y0, x1, y1 = clicks.result["box"]
    assert (x1 - x0, y1 - y0) == (1024, 1024) and x0 <= 1990 < x1 and y0 <= 1490 < y1
    region = clicks.result["region"]
    if region.any():
        count = session.stack.count()
        t0 = time.perf_counter()
        win.editing.actions.accept_preview.trigger()
        stalls["click accept"] = time.perf_counter() - t0
        assert session.stack.count() == count + 1
        corrected = np.asarray(session.corrections())[y0:y1, x0:x1]
        assert corrected[region].all()  # (counted for the next fine-tune)
    assert vpos(win, 2000, 1500)  # (still in view)
    print("worst GUI-thread gaps (s):", {k: round(v, 3) for k, v in stalls.items()})
    assert max(stalls.values()) < MAX_STALL_S, stalls
