"""The batch worker: segments a list of image files and writes their masks, in its thread.

:class:`BatchWorker` lives in a QThread (see :class:`~app.workers.batch_runner.BatchRunner`) and
never touches widgets. It loads its own :class:`core.inference.Segmenter` from the
checkpoint the window uses (a Segmenter is not thread-safe, so the inference thread's one is
not shared), reads each image with the core's reader and writes the outputs with
:func:`core.outputs.files.write_outputs`: the same ``<stem>_<variant>.png`` palette masks (and
``<stem>_<variant>_overlay.jpg``) as ``python -m core predict``, each written atomically.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot

from app.workers.support import describe_error, lower_thread_priority, throttled_progress

if TYPE_CHECKING:
    from core.inference import Segmenter

MAX_NAMES = 10
"""Failed images named in a summary; beyond that it says how many more."""


@dataclass(frozen=True)
class BatchRequest:
    """What to segment and what to write.

    Attributes:
        images: The image files, in the order of the file list.
        out: The output folder.
        checkpoint: The model's checkpoint file.
        device: The device to run on ("cpu", "cuda:0", "auto", ...).
        variants: The variants whose masks are written (a subset of 32s, 16s, 8s).
        overlays: Also write ``<stem>_<variant>_overlay.jpg``.
        skip_existing: Skip images whose outputs all exist already.
        tile_size: Rows per band of the exact streaming (None: measured, as the CLI's default).
    """

    images: tuple[Path, ...]
    out: Path
    checkpoint: Path
    device: str = "auto"
    variants: tuple[str, ...] = ("8s",)
    overlays: bool = False
    skip_existing: bool = False
    tile_size: int | None = None


@dataclass
class BatchSummary:
    """How a batch went, image by image (file names).

    Attributes:
        total: The number of images asked for.
        out: The output folder.
        written: Images whose outputs were written.
        skipped: Images skipped because their outputs existed.
        inside_out: Images not segmented because they lie in the output folder.
        failed: ``(name, message)`` of each image that could not be segmented or written.
        files: The number of files written.
        cancelled: Whether the batch was cancelled before its end.
    """

    total: int
    out: Path
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    inside_out: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    files: int = 0
    cancelled: bool = False

    @property
    def done(self) -> int:
        """Images handled so far (written, skipped or failed)."""
        return len(self.written) + len(self.skipped) + len(self.inside_out) + len(self.failed)

    def counts(self) -> str:
        """"N written, M skipped (already done), K failed: names…"."""
        text = f"{len(self.written)} written, {len(self.skipped)} skipped (already done)"
        if self.inside_out:
            text += f", {len(self.inside_out)} not segmented (inside the output folder)"
        text += f", {len(self.failed)} failed"
        if self.failed:
            names = [name for name, _ in self.failed]
            more = len(names) - MAX_NAMES
            text += ": " + ", ".join(names[:MAX_NAMES]) + (f" and {more} more" if more > 0 else "")
        return text

    def text(self) -> str:
        """The user-facing summary sentence."""
        if self.cancelled:
            return (f"Segment all images cancelled after {self.done} of {self.total} images: "
                    f"{self.counts()}. Every file written is complete; the rest was not "
                    f"written. Outputs in {self.out}")
        return f"Segmented all images: {self.counts()}. Outputs in {self.out}"


def output_paths(out: Path, stem: str, variants: Sequence[str], overlays: bool) -> list[Path]:
    """The files :func:`core.outputs.files.write_outputs` writes for an image (masks, overlays)."""
    paths = []
    for variant in variants:
        prefix = f"{out / stem}_{variant}"
        paths.append(Path(f"{prefix}.png"))
        if overlays:
            paths.append(Path(f"{prefix}_overlay.jpg"))
    return paths


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except (ValueError, OSError):
        return False
    return True


class BatchWorker(QObject):
    """Runs one batch at a time in its thread.

    Signals:
        progress(int, int, int, str, float): job id, images done, total, the name of the
            image being segmented, fraction of that image done.
        imageFailed(int, str, str): job id, image name and a user-facing message.
        finished(int, object): job id and its :class:`BatchSummary`.
        failed(int, str): job id and why the batch could not run at all (the model).
        cancelled(int, object): job id and the :class:`BatchSummary` up to the cancel.
    """

    progress = Signal(int, int, int, str, float)
    imageFailed = Signal(int, str, str)
    finished = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int, object)

    def __init__(self) -> None:
        """No state but the thread priority flag."""
        super().__init__()
        self._prioritized = False

    @Slot(int, object, object)
    def run(self, job: int, request: BatchRequest, cancel: threading.Event) -> None:
        """Segment ``request.images``; ``cancel`` is polled between images and tiles."""
        if not self._prioritized:
            self._prioritized = True
            lower_thread_priority()
        try:
            from core.inference import Segmenter

            segmenter = Segmenter.from_checkpoint(request.checkpoint, device=request.device,
                                                  tile_size=request.tile_size)
        except Exception as exc:
            self.failed.emit(job, describe_error(exc, "Segment all images: could not load "
                                                      f"the model {request.checkpoint}"))
            return
        try:
            request.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.failed.emit(job, f"Segment all images: cannot create the output folder "
                                  f"{request.out}: {exc.strerror or exc}")
            return
        summary = BatchSummary(len(request.images), request.out)
        try:
            self._segment_all(job, request, segmenter, summary, cancel)
        except Exception as exc:  # a bug must not leave the runner waiting forever
            traceback.print_exc()
            self.failed.emit(job, describe_error(exc, "Segment all images stopped"))
            return
        finally:
            del segmenter  # the model's memory goes back as soon as the batch ends
        if summary.cancelled:
            self.cancelled.emit(job, summary)
        else:
            self.finished.emit(job, summary)

    def _segment_all(self, job: int, request: BatchRequest, segmenter: Segmenter,
                     summary: BatchSummary, cancel: threading.Event) -> None:
        from core.data.imageio import read_image
        from core.errors import Cancelled, FCNStudioError
        from core.outputs.files import find_inputs, write_outputs

        present = [p for p in request.images if p.is_file()]
        have = set(present)
        for path in (p for p in request.images if p not in have):
            self._fail(job, summary, path.name, f"Cannot read image {path}: no such file")
        items, _ = find_inputs(present)  # unique output stems, as the CLI gives them
        total = summary.total
        for item in items:
            if cancel.is_set():
                summary.cancelled = True
                return
            name = item.path.name
            self.progress.emit(job, summary.done, total, name, 0.0)
            if _inside(item.path, request.out):
                summary.inside_out.append(name)
                continue
            targets = output_paths(request.out, item.stem, request.variants, request.overlays)
            if request.skip_existing and all(t.is_file() for t in targets):
                summary.skipped.append(name)
                continue
            done = summary.done
            report = throttled_progress(
                lambda f, done=done, name=name: self.progress.emit(job, done, total, name, f))
            try:
                image = read_image(item.path)
                prediction = segmenter.predict(image, variants=request.variants,
                                               progress=report, cancel=cancel.is_set)
                if cancel.is_set():  # polled between tiles: it may come after the last one
                    raise Cancelled()
                written = write_outputs(request.out, item, image, prediction,
                                        segmenter.class_names, segmenter.info.colors,
                                        with_overlay=request.overlays)
            except Cancelled:
                summary.cancelled = True
                return
            except Exception as exc:  # the image is reported and skipped; the batch goes on
                if not isinstance(exc, FCNStudioError | OSError | MemoryError):
                    traceback.print_exc()
                text = str(exc) if str(item.path) in str(exc) else describe_error(
                    exc, f"Cannot segment {item.path}")
                self._fail(job, summary, name, text)
                continue
            summary.written.append(name)
            summary.files += len(written)
        self.progress.emit(job, summary.done, total, "", 1.0)

    def _fail(self, job: int, summary: BatchSummary, name: str, message: str) -> None:
        summary.failed.append((name, message))
        self.imageFailed.emit(job, name, message)
