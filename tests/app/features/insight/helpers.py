"""Helpers of the insight tests: the feature of a window, waiting for what it shows, the
tiny model as the core sees it, and a spy that records which thread ran the core."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QThread
from pytestqt.qtbot import QtBot

from app.features.insight.install import InsightUi
from app.shell.main_window import MainWindow

WAIT_MS = 120_000
CORE_CALLS = [
    ("core.insight.features", "trunk_features"),
    ("core.insight.streams", "decompose"),
    ("core.insight.uncertainty", "estimate_uncertainty"),
    ("core.insight.fc_conv", "compare_fc_conv"),
    ("core.insight.receptive", "effective_receptive_fields"),
]
"""The heavy core functions the feature calls (looked up at call time by the engine)."""


def insight(win: MainWindow, tab: str | None = None) -> InsightUi:
    """The window's insight feature, its dock shown (with ``tab`` in front)."""
    ui = win.insight
    ui.show(tab)
    return ui


def wait_shown(qtbot: QtBot, ui: InsightUi, kind: str, start: Callable[[], Any] | None = None,
               timeout: int = WAIT_MS) -> Any:
    """Run ``start`` and wait until the dock shows a result of ``kind``; return it."""
    seen: list[Any] = []

    def on_shown(k: str, result: Any) -> None:
        if k == kind:
            seen.append(result)

    ui.session.shown.connect(on_shown)
    try:
        if start is not None:
            start()
        qtbot.waitUntil(lambda: bool(seen), timeout=timeout)
    finally:
        ui.session.shown.disconnect(on_shown)
    return seen[-1]


def core_model(path: Path) -> tuple[Any, Any]:
    """The checkpoint's FCN (eval, CPU) and ModelInfo, as the core loads them."""
    from core.checkpoints.checkpoint import load_checkpoint

    model, info = load_checkpoint(path)
    return model.eval(), info


def model_logits(path: Path, image: np.ndarray) -> dict[str, np.ndarray]:
    """``{variant: (C, H, W)}``: the model's plain forward pass on ``image``."""
    import torch

    from core.insight.features import image_tensor

    model, info = core_model(path)
    with torch.no_grad():
        out = model(image_tensor(image, info.preprocessing))
    return {v: o[0].numpy() for v, o in out.items()}


class ThreadSpy:
    """Wraps the heavy core functions to record the thread each call ran in."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Install the wrappers."""
        import importlib

        self.calls: list[tuple[str, int, str]] = []
        for module_name, name in CORE_CALLS:
            module = importlib.import_module(module_name)
            original = getattr(module, name)
            monkeypatch.setattr(module, name, self._wrap(name, original))

    def _wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def spy(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, threading.get_ident(),
                               QThread.currentThread().objectName()))
            return original(*args, **kwargs)

        return spy

    def assert_off_the_gui_thread(self, *names: str) -> None:
        """Each of ``names`` ran, and every call ran in the insight thread."""
        main = threading.main_thread().ident
        ran = {name for name, _, _ in self.calls}
        assert set(names) <= ran, f"not called: {set(names) - ran}"
        for name, ident, thread in self.calls:
            assert ident != main, f"{name} ran on the GUI thread"
            assert thread == "fcn-insight", f"{name} ran in {thread!r}"
