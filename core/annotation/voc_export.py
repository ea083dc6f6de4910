"""A project written as a PASCAL VOC dataset that ``python -m core train`` accepts."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.data.palette import VOID
from core.errors import DatasetError

if TYPE_CHECKING:
    from core.annotation.project import Project

__all__ = ["export_voc"]


def export_voc(project: Project, out: str | os.PathLike[str], *,
               ids: Sequence[str] | None = None, val_fraction: float = 0.2, seed: int = 0,
               corrected_only: bool = False, image_ext: str = ".jpg",
               progress: Callable[[int, int], None] | None = None) -> Path:
    """Write ``project`` as a VOC dataset; return its root.

    Writes ``JPEGImages``, ``SegmentationClass``, ``ImageSets/Segmentation/{train,val,
    trainval}.txt`` and ``class_names.txt``.

    Args:
        project: The project.
        out: Dataset folder (created if needed).
        ids: Images to export (default: every image with a mask).
        val_fraction: Share of images listed in ``val`` (none when fewer than two).
        seed: Seeds the train/val split.
        corrected_only: Set the pixels the user did not correct to 255 (void); the
            corrections are those of each saved mask (``Project.load_pair``).
        image_ext: Image format of ``JPEGImages`` (``.jpg`` at quality 95, ``.png``).
        progress: Called as ``progress(done, total)``.

    Raises:
        DatasetError: No image has a mask.
    """
    from core.data.voc import write_voc_dataset  # imports torch

    ids = project.labeled_ids() if ids is None else list(ids)
    if not ids:
        raise DatasetError(f"Project {project.folder} has no saved mask to export")
    n_val = round(len(ids) * val_fraction) if len(ids) >= 2 else 0
    n_val = min(max(n_val, 1 if val_fraction > 0 and len(ids) >= 2 else 0), len(ids) - 1)
    order = np.random.default_rng(seed).permutation(len(ids))
    val = {ids[i] for i in order[:n_val]}
    splits = {"train": [i for i in ids if i not in val], "val": [i for i in ids if i in val],
              "trainval": ids}

    def items() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        for k, image_id in enumerate(ids):
            saved = project.load_pair(image_id)
            if saved is None:
                raise DatasetError(f"Image {image_id!r} of {project.folder} has no mask yet")
            mask = saved.mask
            if corrected_only and saved.corrections is not None:
                mask = np.where(saved.corrections, mask, np.uint8(VOID)).astype(np.uint8)
            yield image_id, project.read_image(image_id), mask
            if progress is not None:
                progress(k + 1, len(ids))

    return write_voc_dataset(out, items(), project.class_names, splits,
                             image_ext=image_ext, quality=95)
