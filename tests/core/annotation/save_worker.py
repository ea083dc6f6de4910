"""A saving process for the mask/corrections pairing kill tests
(``python -m tests.core.annotation.save_worker FOLDER START``).

It saves mask ``i`` with corrections ``i`` (:func:`pair`) for ``i = START, START + 1, ...``
through :meth:`Project.save_mask` until it is killed. Its file system is slowed down: every
rename sleeps a little afterwards, longest after the corrections file's, so a kill often
falls between the two renames of a save. It prints ``begin i`` before each save, then the
kind of each rename as it is done (``corrections``, ``mask``, ``manifest``, ``project``),
then ``saved i``.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from core.annotation.project import Project

CLASSES = 5
SHAPE = (40, 56)
_real_replace = os.replace


def pair(i: int) -> tuple[np.ndarray, np.ndarray | bool]:
    """Mask ``i`` and its corrections: pixels (``i % 4`` 0 or 2), True (1) or False (3)."""
    rng = np.random.default_rng((1234, i))
    mask = rng.integers(0, CLASSES, SHAPE, dtype=np.uint8)
    kind = i % 4
    if kind in (0, 2):
        return mask, rng.random(SHAPE) < 0.3
    return mask, kind == 1


def _kind(dst: str) -> str:
    parts = os.path.normpath(dst).split(os.sep)
    if "Corrections" in parts:
        return "corrections"
    if "SegmentationClass" in parts:
        return "mask"
    if ".saves" in parts:
        return "manifest"
    return "project"


def _slow_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    _real_replace(src, dst)
    kind = _kind(os.fspath(dst))
    if ".tmp-" in os.path.basename(os.fspath(dst)):
        return  # the encoders' own temporary files
    print(kind, flush=True)
    time.sleep(0.1 if kind == "corrections" else 0.004)


def main(folder: str, start: int) -> None:
    """Save pairs from ``start`` until killed."""
    project = Project.open(folder)
    (image_id,) = project.ids()
    os.replace = _slow_replace  # type: ignore[assignment]
    print("ready", flush=True)
    i = start
    while True:
        mask, corrected = pair(i)
        print(f"begin {i}", flush=True)
        project.save_mask(image_id, mask, corrected)
        print(f"saved {i}", flush=True)
        i += 1


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
