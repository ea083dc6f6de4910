"""The installed PySide6 keeps None/True/False alive (6.12.0 on Python < 3.12 did not)."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import sys
import app  # applies the guard where an affected PySide6 is installed
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication
qapp = QApplication([])
class Emitter(QObject):
    fired = Signal(int)
e = Emitter()
before = sys.getrefcount(None), sys.getrefcount(True)
for _ in range(20000):
    qapp.processEvents()
    e.fired.emit(1)
after = sys.getrefcount(None), sys.getrefcount(True)
print(before[0] - after[0] < 100 and before[1] - after[1] < 100)
"""


def test_many_void_calls_and_emits_do_not_exhaust_none() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "True"
