"""First contact: the bundled demo model on the user's own image, said once.

The bundled model (``resources/models/default.safetensors``) was trained on generated
shapes on textures; on a photo its predictions mean nothing, and a new user would not
know why. The first time it segments an image that is not one of the bundled samples,
Messages says so and how to start with one's own classes (a project, a few strokes, a
new model for the project's classes, Train). It is said once: a setting remembers it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject

from app.features.finetune.new_model import bundled_model
from app.features.host import AppContext, WindowHost

SAID_KEY = "notices/demo_model_on_own_image"
"""The setting that remembers the notice was shown."""


def bundled_samples() -> Path | None:
    """The bundled sample images' folder, if it is there."""
    from core.paths import resource_path

    try:
        path = resource_path("samples")
    except RuntimeError:
        return None
    return path if path.is_dir() else None


def _inside(path: Path, folder: Path | None) -> bool:
    if folder is None:
        return False
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def notice_text(class_names: list[str]) -> str:
    """What the notice says (the demo model's classes named)."""
    return (
        "The loaded model is the bundled demo: it knows only generated shapes "
        f"({', '.join(class_names)}), so on your own images its predictions mean little. "
        "Two ways on. The paper's nets trained on PASCAL VOC (20 object classes and "
        "background): Model > Download Published Models…. "
        "Your own classes: File > New Project… (your images, your class names); "
        "paint a few strokes of each class (Edit > Annotate, From: Rough labels, so "
        "unpainted pixels are ignored); Model > New Model for This Project's Classes…; "
        "then Train in the Fine-tune dock (heads only: seconds on a CPU)."
    )


class FirstContact(QObject):
    """Says once that the demo model only knows generated shapes (see the module).

    Attributes:
        said: Whether the notice was shown (now or in an earlier session).
    """

    def __init__(self, context: AppContext, host: WindowHost) -> None:
        """Watch the predictions shown."""
        super().__init__(host.widget())
        self.context, self.host = context, host
        self.said = bool(context.settings.value(SAID_KEY, False, bool))
        self._demo: tuple[Path | None, str | None] | None = None
        if not self.said:
            context.state.predictionChanged.connect(self.check)

    def _demo_model(self) -> tuple[Path | None, str | None]:
        """The bundled model's path and id (read once)."""
        if self._demo is None:
            from app.common.checkpoints import summarize
            from core.errors import CheckpointError

            path = bundled_model()
            model_id = None
            if path is not None:
                try:
                    model_id = summarize(path).model_id
                except CheckpointError:
                    path = None
            self._demo = (path.resolve() if path is not None else None, model_id)
        return self._demo

    def is_demo(self) -> bool:
        """Whether the model in use is the bundled demo model."""
        loaded = self.context.models.loaded
        if loaded is None:
            return False
        path, model_id = self._demo_model()
        if path is None:
            return False
        return Path(loaded.path).resolve() == path or (
            model_id is not None and loaded.info.id == model_id
        )

    def check(self, *_args: object) -> bool:
        """Say it now if the demo model has segmented one of the user's own images; True
        when it was said."""
        if self.said:
            return False
        doc = self.context.state.document
        if doc is None or doc.path is None or self.context.state.prediction() is None:
            return False
        if _inside(doc.path, bundled_samples()) or not self.is_demo():
            return False
        self.said = True
        self.context.settings.set(SAID_KEY, True)
        self.context.state.predictionChanged.disconnect(self.check)
        self.context.notifications.notify(notice_text(self.context.models.class_names()), "warning")
        self.host.show_dock("messages")
        return True
