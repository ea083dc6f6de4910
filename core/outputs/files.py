"""The files of a prediction: which images to segment, and their masks and maps on disk.

For every image and variant :func:`write_outputs` writes ``<out>/<stem>_<variant>.png``, a
palette PNG of label indices colored with the model's class colors, and optionally an
overlay, one probability heatmap per class and the entropy map. Files found in a folder keep
their subfolder under ``<out>`` (:func:`find_inputs`). Used by ``python -m core predict``
and the app's batch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.data.imageio import write_image, write_mask
from core.imagefiles import is_image_file
from core.outputs.colormaps import ENTROPY_COLORMAP
from core.outputs.render import heatmap, mask_palette, overlay

if TYPE_CHECKING:
    from core.inference import Prediction

__all__ = ["InputFile", "find_inputs", "write_outputs"]


@dataclass(frozen=True)
class InputFile:
    """An image to predict and where its outputs go.

    Attributes:
        path: The image file.
        stem: Output name prefix relative to the output folder ("sub/name").
    """

    path: Path
    stem: str


def _is_within(path: Path, folder: Path | None) -> bool:
    if folder is None:
        return False
    try:
        path.resolve().relative_to(folder)
    except ValueError:
        return False
    return True


def find_inputs(
    inputs: Sequence[Path], exclude: Path | None = None
) -> tuple[list[InputFile], list[str]]:
    """Expand files and folders into the images to predict.

    Files are taken as given; folders are searched recursively for files with an
    image extension (:mod:`core.imagefiles`), skipping anything under ``exclude`` (the output
    folder). Output stems are unique: a clash gets the extension appended.

    Returns:
        ``(files, errors)``: the images, and one message per input that does not exist.
    """
    exclude = exclude.resolve() if exclude is not None else None
    found: list[tuple[Path, str]] = []
    errors: list[str] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            for path in sorted(item.rglob("*")):
                if (
                    path.is_file()
                    and is_image_file(path)
                    and not _is_within(path, exclude)
                ):
                    found.append((path, path.relative_to(item).with_suffix("").as_posix()))
        elif item.exists():
            found.append((item, item.stem))
        else:
            errors.append(f"{item}: no such file or folder")
    files: list[InputFile] = []
    used: set[str] = set()
    seen: set[Path] = set()
    for path, stem in found:
        key = path.resolve()
        if key in seen:
            continue
        seen.add(key)
        candidate = stem
        if candidate.lower() in used:
            candidate = f"{stem}_{path.suffix.lstrip('.').lower()}"
        n = 2
        while candidate.lower() in used:
            candidate = f"{stem}_{n}"
            n += 1
        used.add(candidate.lower())
        files.append(InputFile(path, candidate))
    return files, errors


def _safe_name(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "class"


def write_outputs(
    out: Path,
    item: InputFile,
    image: np.ndarray,
    prediction: Prediction,
    class_names: Sequence[str],
    colors: Sequence[Sequence[int]],
    *,
    with_overlay: bool = False,
    with_heatmaps: bool = False,
    with_entropy: bool = False,
) -> list[Path]:
    """Write the mask (and the optional maps) of every variant of a prediction.

    Args:
        out: The output folder.
        item: The image and its output stem.
        image: The ``H x W x 3`` uint8 image (for the overlays).
        prediction: Its prediction.
        class_names: The model's classes (heatmap file names).
        colors: The class colors (mask palette and overlays).
        with_overlay: Also write ``<stem>_<variant>_overlay.jpg``.
        with_heatmaps: Also write one probability heatmap per class.
        with_entropy: Also write the entropy map.

    Returns:
        The files written.
    """
    palette = mask_palette(colors)
    base = out / item.stem
    base.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for variant, result in prediction.outputs.items():
        prefix = f"{base}_{variant}"
        path = Path(f"{prefix}.png")
        write_mask(path, result.labels, palette)
        written.append(path)
        if with_overlay:
            path = Path(f"{prefix}_overlay.jpg")
            write_image(path, overlay(image, result.labels, colors))
            written.append(path)
        if with_heatmaps:  # one class's map at a time, computed from the fused scores
            for c, name in enumerate(class_names):
                path = Path(f"{prefix}_prob_{c:02d}_{_safe_name(name)}.png")
                write_image(path, heatmap(result.probability(c)))
                written.append(path)
        if with_entropy:
            path = Path(f"{prefix}_entropy.png")
            write_image(path, heatmap(result.entropy(), ENTROPY_COLORMAP))
            written.append(path)
    return written
