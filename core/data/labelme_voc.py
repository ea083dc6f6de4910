"""``labelme2voc`` like labelme's own: a folder of labelme JSON files to a VOC dataset.

Masks are pixel-identical to what labelme's ``examples/semantic_segmentation/labelme2voc.py``
writes (rasterization: :mod:`core.data.labelme`). All or nothing: the dataset is written
into a hidden folder and renamed at the end.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from core.atomic import atomic_write_text
from core.data.imageio import write_image, write_mask
from core.data.labelme import LabelMap, LabelmeError, read_labelme, shapes_to_label
from core.data.palette import VOC_PALETTE, VOID, write_class_names
from core.jsonio import read_json

__all__ = ["labelme2voc", "visualize"]


def visualize(rgb: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Class colors blended over the grayscale image (labels 0 and 255 stay gray)."""
    gray = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    out = np.repeat(gray[..., None], 3, axis=2)
    colored = (mask != 0) & (mask != VOID)
    out[colored] = (1 - alpha) * out[colored] + alpha * VOC_PALETTE[mask[colored]]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def labelme2voc(in_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                labels: LabelMap, *, viz: bool = True,
                progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Convert every ``*.json`` of ``in_dir`` (sorted) to a VOC dataset in ``out_dir``.

    Follows labelme's labelme2voc: ``JPEGImages/<stem>.jpg``, ``SegmentationClass/<stem>.png``
    (palette PNG, VOC colormap, 255 = ``__ignore__``), ``SegmentationClassVisualization/
    <stem>.jpg`` (unless ``viz`` is False) and ``class_names.txt``. It also lists every
    image in ``ImageSets/Segmentation/{train,trainval}.txt`` so ``python -m core train``
    accepts the folder. Every label is checked before anything is written.

    Returns:
        The ids (file stems) written.

    Raises:
        LabelmeError: ``in_dir`` has no JSON file, ``out_dir`` exists and is not empty, a
            file is malformed, or a label is unknown (:class:`UnknownLabelError`).
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise LabelmeError(f"Input folder {in_dir} does not exist")
    files = sorted(in_dir.glob("*.json"))
    if not files:
        raise LabelmeError(f"{in_dir} has no labelme .json file")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise LabelmeError(f"Output directory already exists and is not empty: {out_dir}")
    for f in files:  # every label known before any output
        raw = read_json(f, LabelmeError, "labelme file")
        shapes = raw.get("shapes") if isinstance(raw, dict) else None
        if not isinstance(shapes, list):
            raise LabelmeError(f"{f} is not a labelme file: no 'shapes' list")
        for s in shapes:
            name = s.get("label") if isinstance(s, dict) else None
            if isinstance(name, str):
                labels.value(name, f)
    # Everything is written into a hidden folder beside out_dir, renamed to out_dir at the
    # end: a failure (or a kill) never leaves a partial dataset where the rerun goes.
    _clean_partials(out_dir)
    work = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    try:
        shutil.rmtree(work, ignore_errors=True)
        ids = _write_voc(files, work, labels, viz, progress)
        if out_dir.exists():
            out_dir.rmdir()  # empty: checked above
        os.replace(work, out_dir)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise LabelmeError(f"Cannot write the dataset {out_dir}: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return ids


def _clean_partials(out_dir: Path) -> None:
    """Remove partial outputs of earlier runs into ``out_dir`` whose process is gone."""
    from core.atomic import _pid_running

    try:
        siblings = list(out_dir.parent.glob(f".{out_dir.name}.partial-*"))
    except OSError:
        return
    for p in siblings:
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _pid_running(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def _write_voc(files: Sequence[Path], out_dir: Path, labels: LabelMap, viz: bool,
               progress: Callable[[int, int], None] | None) -> list[str]:
    ids: list[str] = []
    write_class_names(out_dir / "class_names.txt", list(labels.class_names))
    for k, f in enumerate(files):
        doc = read_labelme(f)
        mask = shapes_to_label(doc.shape, doc.shapes, labels, f)
        write_image(out_dir / "JPEGImages" / f"{f.stem}.jpg", doc.image, quality=95)
        write_mask(out_dir / "SegmentationClass" / f"{f.stem}.png", mask, VOC_PALETTE)
        if viz:
            write_image(out_dir / "SegmentationClassVisualization" / f"{f.stem}.jpg",
                        visualize(doc.image, mask))
        ids.append(f.stem)
        if progress is not None:
            progress(k + 1, len(files))
    split_dir = out_dir / "ImageSets" / "Segmentation"
    listing = "".join(f"{i}\n" for i in ids)
    for split in ("train", "trainval"):
        atomic_write_text(split_dir / f"{split}.txt", listing)
    return ids
