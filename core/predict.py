"""``python -m core predict``: segment image files and folders, writing masks and maps.

For every input image and variant it writes ``<out>/<stem>_<variant>.png``, a palette PNG
of label indices colored with the model's class colors, and optionally an overlay, one
probability heatmap per class and the entropy map. Files found in a folder keep their
subfolder under ``<out>``. An unreadable file prints one line naming it; the others are
still processed and the exit code is 1.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from core.data.imageio import read_image, write_image, write_mask
from core.data.palette import VOID
from core.errors import FCNStudioError

if TYPE_CHECKING:
    from core.inference import Prediction

__all__ = [
    "IMAGE_EXTENSIONS",
    "InputFile",
    "add_parser",
    "colorize",
    "find_inputs",
    "heatmap",
    "mask_palette",
    "overlay",
    "run",
    "write_outputs",
]

VARIANTS: tuple[str, ...] = ("32s", "16s", "8s")
"""``core.models.fcn.VARIANTS``, repeated so that building the CLI does not import torch."""

IMAGE_EXTENSIONS = frozenset(
    {
        ".bmp", ".dib", ".jpg", ".jpeg", ".jpe", ".jp2", ".png", ".webp", ".tif", ".tiff",
        ".pbm", ".pgm", ".ppm", ".pxm", ".pnm", ".sr", ".ras", ".gif",
    }
)
"""Extensions of the files picked up when a folder is given (case-insensitive)."""

VOID_COLOR = (224, 224, 192)
"""Palette entry 255 (void), as in the VOC masks."""


@dataclass(frozen=True)
class InputFile:
    """An image to predict and where its outputs go.

    Attributes:
        path: The image file.
        stem: Output name prefix relative to the output folder ("sub/name").
    """

    path: Path
    stem: str


# --------------------------------------------------------------------------- parser


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``predict`` subcommand on ``subparsers``; return its parser."""
    p = subparsers.add_parser(
        "predict",
        help="segment images and folders, writing palette PNG masks",
        description="Segment image files and folders (searched recursively). Writes "
        "<out>/<stem>_<variant>.png palette masks, and optionally overlays, per-class "
        "probability heatmaps and entropy maps.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files or folders")
    p.add_argument("--model", type=Path, help="checkpoint (default: the bundled model)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    p.add_argument(
        "--variant", default="8s", choices=[*VARIANTS, "all"], help="output(s) to write"
    )
    p.add_argument(
        "--out", type=Path, default=Path("predictions"), help="output folder (./predictions)"
    )
    p.add_argument(
        "--overlay", action="store_true", help="also write the image blended with the mask"
    )
    p.add_argument("--heatmaps", action="store_true", help="also write one heatmap per class")
    p.add_argument(
        "--entropy", action="store_true", help="also write the entropy (uncertainty) map"
    )
    p.add_argument("--tile-size", type=int, default=1024, help="tile larger images (pixels)")
    p.add_argument(
        "--backend", default=None,
        help="inference runtime: auto (default, or $FCN_STUDIO_BACKEND), eager, torch, "
        "onnxruntime, onnxruntime-int8, with options as in torch:compile=1 "
        "(docs/benchmarks.md)",
    )
    p.set_defaults(func=run)
    return p


# --------------------------------------------------------------------------- inputs


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
    :data:`IMAGE_EXTENSIONS` extension, skipping anything under ``exclude`` (the output
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
                    and path.suffix.lower() in IMAGE_EXTENSIONS
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


# --------------------------------------------------------------------------- rendering


def mask_palette(colors: Sequence[Sequence[int]]) -> np.ndarray:
    """A 256-entry ``(256, 3)`` uint8 PNG palette: the class colors, black, 255 = void."""
    pal = np.zeros((256, 3), dtype=np.uint8)
    colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)[:VOID]
    pal[: len(colors)] = colors
    pal[VOID] = VOID_COLOR
    return pal


def colorize(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """An ``H x W x 3`` RGB image of a label mask through a palette."""
    return palette[labels]


def overlay(
    image: np.ndarray, labels: np.ndarray, palette: np.ndarray, alpha: float = 0.5
) -> np.ndarray:
    """The image blended with the label colors (``alpha`` of the colors)."""
    mixed = (1.0 - alpha) * image.astype(np.float32) + alpha * colorize(labels, palette)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def heatmap(values: np.ndarray, colormap: int = cv2.COLORMAP_VIRIDIS) -> np.ndarray:
    """An ``H x W x 3`` RGB rendering of values in [0, 1] with a perceptual colormap."""
    gray = np.clip(np.rint(np.asarray(values, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
    return cv2.applyColorMap(gray, colormap)[:, :, ::-1]


def _safe_name(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "class"


def write_outputs(
    out: Path,
    item: InputFile,
    image: np.ndarray,
    prediction: Prediction,
    class_names: Sequence[str],
    palette: np.ndarray,
    *,
    with_overlay: bool = False,
    with_heatmaps: bool = False,
    with_entropy: bool = False,
) -> list[Path]:
    """Write the mask (and the optional maps) of every variant of a prediction.

    Returns:
        The files written.
    """
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
            write_image(path, overlay(image, result.labels, palette))
            written.append(path)
        if with_heatmaps:
            for c, name in enumerate(class_names):
                path = Path(f"{prefix}_prob_{c:02d}_{_safe_name(name)}.png")
                write_image(path, heatmap(result.probs[c]))
                written.append(path)
        if with_entropy:
            path = Path(f"{prefix}_entropy.png")
            write_image(path, heatmap(result.entropy))
            written.append(path)
    return written


# --------------------------------------------------------------------------- command


def _read_ahead(
    files: Sequence[InputFile], pool: ThreadPoolExecutor, depth: int = 2
) -> Iterator[tuple[InputFile, Future[np.ndarray]]]:
    """Yield ``(file, future image)`` while the next ``depth`` files are being read."""
    pending: deque[tuple[InputFile, Future[np.ndarray]]] = deque()
    it = iter(files)
    while True:
        while len(pending) < depth:
            item = next(it, None)
            if item is None:
                break
            pending.append((item, pool.submit(read_image, item.path)))
        if not pending:
            return
        yield pending.popleft()


def run(args: argparse.Namespace) -> int:
    """Run ``predict``: 0 when every image was written, 1 when any failed.

    Raises:
        FCNStudioError: The model or device cannot be used (nothing is predicted).
    """
    from tqdm import tqdm

    from core.inference import Segmenter

    variants = VARIANTS if args.variant == "all" else (args.variant,)
    files, errors = find_inputs(args.inputs, exclude=args.out)
    for message in errors:
        print(f"error: {message}", file=sys.stderr)
    if not files:
        print("error: no images found in the given inputs", file=sys.stderr)
        return 1
    segmenter = Segmenter.from_checkpoint(
        args.model, device=args.device, tile_size=getattr(args, "tile_size", 1024),
        backend=getattr(args, "backend", None),
    )
    palette = mask_palette(segmenter.info.colors)
    notes = segmenter.backend_notes
    print(f"inference: {segmenter.backend.description} on {segmenter.device}"
          + (f" ({'; '.join(notes)})" if notes else ""), file=sys.stderr)
    failed = len(errors)
    written = 0
    with ThreadPoolExecutor(max_workers=1) as pool, tqdm(
        total=len(files), desc="predict", unit="img", file=sys.stderr, dynamic_ncols=True
    ) as bar:
        for item, future in _read_ahead(files, pool):
            try:
                image = future.result()
                prediction = segmenter.predict(image, variants=variants)
                for message in prediction.messages:
                    tqdm.write(f"warning: {item.path}: {message}", file=sys.stderr)
                write_outputs(
                    args.out, item, image, prediction, segmenter.class_names, palette,
                    with_overlay=args.overlay, with_heatmaps=args.heatmaps,
                    with_entropy=args.entropy,
                )
                written += 1
            except (FCNStudioError, OSError) as exc:
                failed += 1
                text = str(exc) if str(item.path) in str(exc) else f"{item.path}: {exc}"
                tqdm.write(f"error: {text}", file=sys.stderr)
            bar.update(1)
    summary = f"{written} image(s) predicted into {args.out}"
    if failed:
        summary += f"; {failed} failed"
    print(summary, file=sys.stderr)
    return 1 if failed else 0
