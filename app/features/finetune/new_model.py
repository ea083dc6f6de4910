"""Model > New Model for This Project's Classes…: a model whose classes are the project's.

This implements the shell's ``new_model_for_project`` action (the Project dock's banner
offers it when the loaded model's classes are not the project's). The dialog chooses the
trunk's source: the loaded model, any checkpoint (the bundled one, a published VOC net or
an import from the library, one of the project's versions, a file) or torchvision's
ImageNet VGG16 (downloaded on first use; offline, the message says which file to place
where). :func:`core.training.own_classes.make_model` runs in the fine-tune thread and
saves ``<project>/models/<project>-<source>.safetensors`` (its parent: the source's id);
it is loaded at once, so the model's classes equal the project's and the banner goes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject

from app.common.checkpoints import library, summarize
from app.features.finetune.controller import FineTuneController
from app.features.finetune.new_model_dialog import IMAGENET, NewModelDialog, TrunkSource
from app.features.finetune.versions import MODELS_DIR, version_files
from app.features.host import AppContext, WindowHost
from app.workers.finetune import NewModelJob
from core.errors import CheckpointError

IMAGENET_LABEL = "ImageNet VGG16 (torchvision)"
IMAGENET_DETAIL = (
    "full width; about 528 MB, downloaded once into torch's cache on first "
    "use (offline: the message says which file to place where)"
)
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")
_FT = re.compile(r"-ft\d+$")


def bundled_model() -> Path | None:
    """The bundled demo model's file (not ``$FCN_STUDIO_MODEL``), if it is there."""
    from core.paths import resource_path

    try:
        path = resource_path("models", "default.safetensors")
    except RuntimeError:
        return None
    return path if path.is_file() else None


def model_path(folder: Path, source: str) -> Path:
    """``<folder>/models/<project>-<source>.safetensors``, with the first free suffix."""
    base = _SLUG.sub("-", f"{folder.name}-{_FT.sub('', source)}").strip("-.") or "model"
    out = folder / MODELS_DIR
    path, n = out / f"{base}.safetensors", 1
    while path.exists():
        n += 1
        path = out / f"{base}-{n}.safetensors"
    return path


class NewModelUi(QObject):
    """The action, the dialog, the job and loading its result.

    Attributes:
        dialog: The dialog while it is open, else None.
    """

    def __init__(
        self, context: AppContext, host: WindowHost, controller: FineTuneController
    ) -> None:
        """Implement the shell's ``new_model_for_project`` action."""
        super().__init__(host.widget())
        self.context, self.host, self.controller = context, host, controller
        self.dialog: NewModelDialog | None = None
        self.busy = False
        self.action = host.action("new_model_for_project")
        self.action.triggered.connect(lambda: self.open_dialog())
        controller.modelMade.connect(self._on_made)
        controller.modelFailed.connect(self._on_failed)
        context.projects.projectChanged.connect(self._update_action)
        self._update_action()

    def _update_action(self, *_args: object) -> None:
        self.action.setEnabled(self.context.projects.project is not None and not self.busy)

    # ------------------------------------------------------------------ sources
    def sources(self) -> list[TrunkSource]:
        """Where a trunk can come from: the loaded model, the bundled model, the library,
        the project's versions, torchvision's ImageNet VGG16 (each file once)."""
        out: list[TrunkSource] = []
        seen: set[Path] = set()

        def add(path: Path | None, label: str, detail: str = "") -> None:
            if path is None or path.resolve() in seen:
                return
            try:
                s = summarize(path)
            except CheckpointError:
                return
            seen.add(path.resolve())
            classes = f"{len(s.class_names)} classes: {', '.join(s.class_names[:6])}" + (
                " …" if len(s.class_names) > 6 else ""
            )
            out.append(
                TrunkSource(
                    label.format(name=s.name),
                    str(path),
                    s.class_names,
                    f"{classes} · {detail or path}",
                )
            )

        loaded = self.context.models.loaded
        add(Path(loaded.path) if loaded is not None else None, "The loaded model: {name}")
        add(
            bundled_model(),
            "The bundled demo model: {name}",
            "generated shapes on textures; compact (width 1/8): fast on a CPU",
        )
        for s in library():
            add(s.path, "{name}", f"model library: {s.path.name}")
        for path in version_files(self.context.projects.folder):
            add(path, "{name}", f"this project: {path.name}")
        out.append(TrunkSource(IMAGENET_LABEL, IMAGENET, (), IMAGENET_DETAIL))
        return out

    # ------------------------------------------------------------------ commands
    def open_dialog(self) -> NewModelDialog | None:
        """Show the dialog (None, with a message, without a project)."""
        project = self.context.projects.project
        if project is None:
            self.context.notifications.notify(
                "Open or make a project first (File > New Project…): the new model gets "
                "its classes",
                "warning",
            )
            return None
        if self.dialog is None:
            self.dialog = NewModelDialog(
                project.class_names,
                self.sources(),
                self.context.settings.last_dir,
                self.host.widget(),
            )
            self.dialog.createRequested.connect(self.make)
            self.dialog.finished.connect(self._dialog_closed)
        self.dialog.set_busy(self.busy)
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()
        return self.dialog

    def _dialog_closed(self, *_args: object) -> None:
        if self.dialog is not None:
            self.dialog.deleteLater()
        self.dialog = None

    def make(self, source: TrunkSource) -> bool:
        """Make a model for the open project's classes from ``source``'s trunk (in the
        fine-tune thread); False (with a message) when it cannot start."""
        project = self.context.projects.project
        notes = self.context.notifications
        if project is None or self.busy:
            notes.notify(
                "A new model is already being made" if self.busy else "Open a project first",
                "warning",
            )
            return False
        stem = "imagenet-vgg16" if source.init == IMAGENET else Path(source.init).stem
        out = model_path(project.folder, stem)
        name = f"{project.folder.name} · from {source.label.split(': ')[-1]}"
        job = NewModelJob(
            source.init,
            list(project.class_names),
            [tuple(c) for c in project.colors],
            out,
            name,
            source.label,
        )
        self.busy = True
        self._update_action()
        if self.dialog is not None:
            self.dialog.set_busy(True)
        self.host.show_progress(
            "new-model", f"Making a model for the project's classes from {source.label}…"
        )
        self.controller.make_model(job)
        return True

    # ------------------------------------------------------------------ results
    def _done(self) -> None:
        self.busy = False
        self._update_action()
        self.host.hide_progress("new-model")
        if self.dialog is not None:
            self.dialog.set_busy(False)

    def _on_made(self, path: Path, info: Any) -> None:
        self._done()
        training = info.training or {}
        kept, new = training.get("kept_classes", []), training.get("new_classes", [])
        self.context.notifications.notify(
            f"Made {info.name} ({path.name}) for the project's {info.num_classes} classes: "
            f"{len(kept)} kept their score weights ({', '.join(kept) or 'none'}), "
            f"{len(new)} start at zero. Loading it: paint a few strokes of each class "
            "(Edit > Annotate, From: Rough labels: the pixels you do not paint are ignored), "
            "then Train in the Fine-tune dock."
        )
        self.controller.remember(path)
        self.context.inference.load_model(str(path))
        if self.dialog is not None:
            self.dialog.close()
        self.host.show_dock("finetune")

    def _on_failed(self, message: str) -> None:
        self._done()
        self.context.notifications.notify(message, "error")
        if self.dialog is not None:
            self.dialog.show_error(message)
        else:
            self.host.show_dock("messages")
