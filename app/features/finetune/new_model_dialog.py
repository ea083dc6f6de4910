"""The New Model dialog: choose where the trunk of a model for the project's classes comes
from, see which classes keep their score weights, create it.

Non-modal. The sources are listed by :class:`~app.features.finetune.new_model.NewModelUi`
(the loaded model, the bundled one, the model library, the project's versions, torchvision's
ImageNet VGG16); *Other checkpoint…* adds any file. Create asks the owner to make the model
(``createRequested``); a failure is shown here (and in Messages) and the dialog stays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

IMAGENET = "imagenet"
"""The source that means torchvision's ImageNet VGG16 (``core.training.new_model``)."""


@dataclass(frozen=True)
class TrunkSource:
    """Where a new model's trunk can come from.

    Attributes:
        label: What the list shows.
        init: A checkpoint path, or :data:`IMAGENET`.
        class_names: The source's classes (empty for ImageNet: no score weights kept).
        detail: A second line (where it is, what it knows).
    """

    label: str
    init: str
    class_names: tuple[str, ...] = ()
    detail: str = ""


def kept_and_new(project: Sequence[str], source: Sequence[str]) -> tuple[list[str], list[str]]:
    """The project's classes whose names the source has (their score weights are kept) and
    the others (they start at zero), names compared as the core does."""
    from core.annotation.classes import class_key

    known = {class_key(n) for n in source}
    kept = [n for n in project if class_key(n) in known]
    return kept, [n for n in project if class_key(n) not in known]


class NewModelDialog(QDialog):
    """Pick a trunk source for a model of the project's classes.

    Signals:
        createRequested(object): Create was clicked with that :class:`TrunkSource`.
    """

    createRequested = Signal(object)

    def __init__(self, class_names: Sequence[str], sources: Sequence[TrunkSource],
                 start_dir: str = "", parent: QWidget | None = None) -> None:
        """List ``sources`` for a model of ``class_names`` (the first source is chosen)."""
        super().__init__(parent)
        self.setWindowTitle("New Model for the Project's Classes")
        self.setObjectName("new-model-dialog")
        self.setModal(False)
        self.resize(620, 460)
        self.class_names = list(class_names)
        self.start_dir = start_dir
        layout = QVBoxLayout(self)
        intro = QLabel(
            f"A new FCN for the project's {len(self.class_names)} classes "
            f"({', '.join(self.class_names[:10])}{' …' if len(self.class_names) > 10 else ''}). "
            "Its trunk (the VGG layers up to fc7) comes from the model you choose below; "
            "classes whose names it knows keep their score weights, the others start at "
            "zero. Then paint a few strokes of each class and train (seconds on a CPU).",
            self)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addWidget(QLabel("Take the trunk from:", self))
        self.list = QListWidget(self)
        self.list.setWordWrap(True)
        self.list.setAlternatingRowColors(True)
        layout.addWidget(self.list, 1)
        self.preview = QLabel("", self)
        self.preview.setWordWrap(True)
        self.preview.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.preview)
        self.message = QLabel("", self)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setStyleSheet("color: #b00020;")
        self.message.hide()
        layout.addWidget(self.message)
        buttons = QHBoxLayout()
        self.browse_button = QPushButton("Other checkpoint…", self)
        self.create_button = QPushButton("Create and load", self)
        self.create_button.setDefault(True)
        self.close_button = QPushButton("Close", self)
        buttons.addWidget(self.browse_button)
        buttons.addStretch(1)
        buttons.addWidget(self.create_button)
        buttons.addWidget(self.close_button)
        layout.addLayout(buttons)
        for source in sources:
            self.add_source(source)
        self.list.setCurrentRow(0)
        self.list.currentRowChanged.connect(self._show_choice)
        self.browse_button.clicked.connect(self.browse)
        self.create_button.clicked.connect(self._create)
        self.close_button.clicked.connect(self.close)
        self._show_choice()

    def add_source(self, source: TrunkSource) -> QListWidgetItem:
        """Add a source to the list (it is not chosen)."""
        text = source.label + (f"\n    {source.detail}" if source.detail else "")
        item = QListWidgetItem(text, self.list)
        item.setData(Qt.ItemDataRole.UserRole, source)
        item.setToolTip(source.init)
        return item

    def sources(self) -> list[TrunkSource]:
        """The listed sources, in order."""
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(self.list.count())]

    def choose(self, init: str | Path) -> bool:
        """Choose the source of ``init`` (a path or :data:`IMAGENET`); False if not listed."""
        for i, source in enumerate(self.sources()):
            if source.init == str(init):
                self.list.setCurrentRow(i)
                return True
        return False

    def chosen(self) -> TrunkSource | None:
        """The chosen source."""
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def browse(self) -> None:
        """Add a checkpoint file of the user's choice and choose it."""
        path, _ = QFileDialog.getOpenFileName(self, "Trunk from a checkpoint", self.start_dir,
                                              "FCN Studio checkpoints (*.safetensors)")
        if path:
            self.add_checkpoint(Path(path))

    def add_checkpoint(self, path: Path) -> TrunkSource | None:
        """Add ``path`` (read from its header) and choose it; None (said here) if unreadable."""
        from app.common.checkpoints import summarize
        from core.errors import CheckpointError

        try:
            summary = summarize(path)
        except CheckpointError as exc:
            self.show_error(str(exc))
            return None
        source = TrunkSource(summary.name, str(path), summary.class_names, str(path))
        self.add_source(source)
        self.list.setCurrentRow(self.list.count() - 1)
        return source

    def show_error(self, text: str) -> None:
        """Say why no model was made (the dialog stays open)."""
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def set_busy(self, busy: bool) -> None:
        """While a model is being made, nothing else can be created."""
        self.create_button.setEnabled(not busy and self.chosen() is not None)
        self.create_button.setText("Making the model…" if busy else "Create and load")

    def _show_choice(self, *_args: object) -> None:
        source = self.chosen()
        self.create_button.setEnabled(source is not None)
        if source is None:
            self.preview.setText("")
            return
        self.show_error("")
        if source.init == IMAGENET:
            self.preview.setText("Every class starts at zero (the ImageNet classifier is not "
                                 "a segmentation head). Full-width VGG16: training the heads "
                                 "takes longer than with a compact trunk.")
            return
        kept, new = kept_and_new(self.class_names, source.class_names)
        self.preview.setText(
            f"Keep their score weights: {', '.join(kept) if kept else 'none'}. "
            f"Start at zero: {', '.join(new) if new else 'none'}.")

    def _create(self) -> None:
        source = self.chosen()
        if source is not None:
            self.show_error("")
            self.createRequested.emit(source)
