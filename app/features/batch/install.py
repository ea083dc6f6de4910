"""BatchUi: Model > Segment All Images… as a feature (action, dialog, progress, messages)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence

from app.features.batch.dialog import BatchDialog, BatchOptions
from app.features.host import AppContext, WindowHost
from app.widgets.menus import add_after
from app.workers.batch import BatchRequest, BatchSummary
from app.workers.batch_runner import BatchRunner
from core.variants import VARIANTS

DEFAULT_FOLDER = "fcn-predictions"
"""The default output folder's name, made next to the first image."""
OUT_KEY, VARIANTS_KEY = "batch/out", "batch/variants"
OVERLAYS_KEY, SKIP_KEY = "batch/overlays", "batch/skip_existing"
NO_MODEL = ("Segment all images: no model is loaded. Open a checkpoint (Model > Open "
            "Checkpoint…) first")
LOADING = "Segment all images: the model is still loading; try again once it is loaded"
NO_IMAGES = ("Segment all images: no images are open. Open images or a folder (File > Open "
             "Images… or Open Folder…) first")


class BatchUi(QObject):
    """Segments every image of the file list with the current model, in a worker thread.

    Attributes:
        action: Model > Segment All Images… (Ctrl+Shift+R).
        runner: The :class:`BatchRunner` (its thread starts with the first batch).
        dialog: The dialog, once shown.
        tile_size: Rows per band of the streaming (None: measured; tests make it small).
    """

    def __init__(self, context: AppContext, host: WindowHost) -> None:
        """Add the action after Model > Auto-run and wire the messages and the progress."""
        window = host.widget()
        super().__init__(window)
        self.context, self.host = context, host
        self.runner = BatchRunner(self)
        self.dialog: BatchDialog | None = None
        self.tile_size: int | None = None
        self.action = QAction("Segment &All Images…", window)
        self.action.setShortcut(QKeySequence("Ctrl+Shift+R"))
        tip = "Segment every image in the file list and write its masks to a folder"
        self.action.setStatusTip(tip)
        self.action.setToolTip(tip)
        self.action.triggered.connect(lambda: self.open_dialog())
        add_after(host.action("autorun"), self.action, host.menu("Model"))
        notify = context.notifications.notify
        self.runner.imageFailed.connect(lambda _name, message: notify(message, "error"))
        self.runner.failed.connect(self._on_failed)
        self.runner.finished.connect(self._on_summary)
        self.runner.cancelled.connect(self._on_summary)
        # progress stays visible while the dialog is closed: the status bar's keyed progress
        # (a status message would hide the hover readout for the whole batch)
        self.runner.progress.connect(self._on_progress)
        host.add_shutdown(self.shutdown)

    # ------------------------------------------------------------------ what would run
    def images(self) -> list[Path]:
        """The images of the window's file list, in its order."""
        return [entry.image for entry in self.context.documents.entries]

    def problem(self) -> str | None:
        """Why nothing can run now (no model, no images), or None."""
        if self.context.models.loaded is None:
            return LOADING if self.context.inference.loading else NO_MODEL
        if not self.images():
            return NO_IMAGES
        return None

    def default_options(self) -> BatchOptions:
        """The remembered options; the folder defaults to ``fcn-predictions`` by the images."""
        s = self.context.settings
        images = self.images()
        default = str(images[0].parent / DEFAULT_FOLDER) if images else ""
        variants = str(s.value(VARIANTS_KEY, "8s", str)).split(",")
        return BatchOptions(
            out=str(s.value(OUT_KEY, "", str) or default),
            variants=tuple(v for v in VARIANTS if v in variants) or ("8s",),
            overlays=bool(s.value(OVERLAYS_KEY, False, bool)),
            skip_existing=bool(s.value(SKIP_KEY, False, bool)),
        )

    def _source_text(self) -> str:
        n = len(self.images())
        model = self.context.models.describe()
        return f"{n} image{'s' if n != 1 else ''} in the file list · model: {model}"

    # ------------------------------------------------------------------ commands
    def open_dialog(self) -> BatchDialog | None:
        """Show the dialog; None (with a message, nothing shown) without a model or images."""
        if not self.runner.busy:
            problem = self.problem()
            if problem is not None:
                self.context.notifications.notify(problem, "warning")
                return None
        if self.dialog is None:
            self.dialog = BatchDialog(self.runner, self.host.widget())
            self.dialog.startRequested.connect(lambda: self.start())
        if not self.runner.busy:
            self.dialog.set_options(self.default_options())
            self.dialog.set_source(self._source_text())
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()
        return self.dialog

    def start(self, options: BatchOptions | None = None) -> bool:
        """Start a batch with ``options`` (None: the dialog's, else the remembered ones).

        Returns:
            Whether it started; if not, a message says why.
        """
        if options is None:
            options = self.dialog.options() if self.dialog is not None else self.default_options()
        problem = self.problem()
        if problem is None and not options.variants:
            problem = "Segment all images: tick at least one variant to write"
        if problem is None and not options.out:
            problem = "Segment all images: choose an output folder"
        if problem is None and self.runner.busy:
            problem = "Segment all images: a batch is already running"
        if problem is not None:
            self.context.notifications.notify(problem, "warning")
            if self.dialog is not None:
                self.dialog.show_message(problem)
            return False
        images = self.images()
        out = Path(options.out).expanduser()
        if not out.is_absolute():  # relative to the images, not to the working directory
            out = images[0].parent / out
        s = self.context.settings
        s.set(OUT_KEY, str(out))
        s.set(VARIANTS_KEY, ",".join(options.variants))
        s.set(OVERLAYS_KEY, options.overlays)
        s.set(SKIP_KEY, options.skip_existing)
        loaded = self.context.models.loaded
        assert loaded is not None
        if self.dialog is not None:
            self.dialog.set_source(self._source_text())
        request = BatchRequest(tuple(images), out, loaded.path, loaded.device, options.variants,
                               options.overlays, options.skip_existing, self.tile_size)
        self.host.show_message(f"Segmenting {len(images)} images into {out}…", 5000)
        return self.runner.start(request)

    def cancel(self) -> bool:
        """Cancel the running batch."""
        return self.runner.cancel()

    def shutdown(self) -> None:
        """Cancel a batch and stop the thread (the window is closing)."""
        self.runner.shutdown()

    # ------------------------------------------------------------------ events
    def _on_progress(self, done: int, total: int, name: str, fraction: float) -> None:
        self.host.show_progress(
            "batch", f"Batch: {done} / {total}", done / total if total else -1.0, self.cancel,
            f"Segment all images: {done} of {total} done" + (f", now {name}" if name else ""))

    def _on_summary(self, summary: BatchSummary) -> None:
        self.host.hide_progress("batch")
        level = "warning" if summary.failed else "info"
        self.context.notifications.notify(summary.text(), level)
        if summary.failed:
            self.host.show_dock("messages")

    def _on_failed(self, message: str) -> None:
        self.host.hide_progress("batch")
        self.context.notifications.notify(message, "error")
        self.host.show_dock("messages")


def install_batch(context: AppContext, host: WindowHost) -> BatchUi:
    """Add Model > Segment All Images… to the window ``host`` stands for."""
    return BatchUi(context, host)
