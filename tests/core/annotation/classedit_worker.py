"""A process applying class edits in a loop, for the kill test of class edits
(``python -m tests.core.annotation.classedit_worker FOLDER``).

Each edit moves class 0 to the last label (a rotation: every label of every mask changes).
Renames are slowed down so that a kill often lands among the masks of an edit. It prints
``ready``, then ``begin i`` and ``done i`` around edit ``i``.
"""

from __future__ import annotations

import os
import sys
import time

from core.annotation.classes import move_class
from core.annotation.project import Project
from core.annotation.renumber import apply_class_edit

_real_replace = os.replace


def _slow_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    _real_replace(src, dst)
    time.sleep(0.01)


def main(folder: str) -> None:
    """Rotate the classes until killed."""
    project = Project.open(folder)
    os.replace = _slow_replace  # type: ignore[assignment]
    print("ready", flush=True)
    i = 0
    while True:
        print(f"begin {i}", flush=True)
        apply_class_edit(project, move_class(project.classes, 0, len(project.classes) - 1))
        print(f"done {i}", flush=True)
        i += 1


if __name__ == "__main__":
    main(sys.argv[1])
