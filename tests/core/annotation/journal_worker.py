"""A painting process for the stroke journal's kill tests
(``python -m tests.core.annotation.journal_worker``).

It opens a project, recovers the image's mask (saved mask + journal), then paints strokes
``start, start + 1, ...`` through the core API, journals each (sometimes an undo too), saves
every few strokes (save, then clear the journal) and prints each stroke's index once it is
journaled, until it is killed. :func:`paint` is also the tests' model of what it does.
"""

from __future__ import annotations

import itertools
import sys
import time

import numpy as np

from core.annotation import LabelImage, brush_stroke
from core.annotation.journal import Journal
from core.annotation.project import Project

SEED = 20240611
CLASSES = 5
SAVE_EVERY = 7


def start_mask(shape: tuple[int, int]) -> np.ndarray:
    """The mask a session starts from when nothing is saved (a stand-in for a prediction)."""
    rng = np.random.default_rng(SEED)
    coarse = rng.integers(0, CLASSES, (shape[0] // 8 + 1, shape[1] // 8 + 1), np.uint8)
    return np.repeat(np.repeat(coarse, 8, 0), 8, 1)[: shape[0], : shape[1]].copy()


def paint(image: LabelImage, i: int, journal: Journal | None = None, *,
          undo: bool = True) -> None:
    """Stroke ``i`` (a function of ``i`` alone): a brush stroke, undone when ``i % 11 == 5``
    (unless ``undo`` is False: the state between the stroke and its undo)."""
    rng = np.random.default_rng((SEED, i))
    h, w = image.shape
    points = rng.uniform((-10, -10), (w + 10, h + 10), (int(rng.integers(2, 6)), 2))
    stroke = image.begin_stroke(int(rng.choice([*range(CLASSES), 255])))
    for a, b in itertools.pairwise(points):
        stroke.add(brush_stroke([a, b], float(rng.uniform(1, 9)), image.shape))
    edit = stroke.finish()
    if edit is None:
        return
    if journal is not None:
        journal.append_edit(edit)
    if undo and i % 11 == 5:
        image.undo(edit)
        if journal is not None:
            journal.append_edit(edit, undo=True)


def main(folder: str, start: int) -> None:
    """Paint from stroke ``start`` until killed."""
    project = Project.open(folder)
    (image_id,) = project.ids()
    journal = project.journal(image_id)
    saved = project.load_mask(image_id)
    mask, _ = journal.replay(saved)
    if mask is None:
        mask = start_mask(journal.shape)
        journal.append((0, 0, mask.shape[1], mask.shape[0]), mask)
    image = LabelImage(mask, num_classes=CLASSES)
    print("ready", flush=True)
    i = start
    while True:
        paint(image, i, journal)
        print(i, flush=True)
        i += 1
        if i % SAVE_EVERY == 0:
            project.save_mask(image_id, image.array)
            journal.clear_after_save(image.array)
        time.sleep(0.002)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
