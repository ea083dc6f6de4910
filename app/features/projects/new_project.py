"""File > New Project…: a folder of images (referenced or copied) and the project's classes.

The classes are typed one a line, read from a labels.txt / class_names.txt (labelme's
conventions: ``__ignore__`` is void, ``_background_`` class 0), gathered from the labelme
JSON files next to the images, or copied from the loaded model. A preview shows the
classes with their colors (the VOC palette) or why the list is not acceptable; Create is
enabled only for a list the project accepts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.common.files import scan
from app.panels.legend import swatch

TYPED, FILE, LABELME, MODEL = "typed", "file", "labelme", "model"
SOURCES = {TYPED: "Typed below", FILE: "A labels file (labels.txt, class_names.txt)",
           LABELME: "The labelme files next to the images", MODEL: "The loaded model"}
DEFAULT_NAME = "fcn-studio-project"


def _row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    for w in widgets:
        row.addWidget(w, 1 if isinstance(w, QLineEdit) else 0)
    return row


class NewProjectDialog(QDialog):
    """Choose the images, the project folder and the classes (see the module docstring).

    Attributes:
        images: The image files found in the images folder.
        classes: The classes as the preview shows them (empty while not acceptable).

    Signals:
        createRequested(): Create was clicked with an acceptable choice.
    """

    createRequested = Signal()

    def __init__(self, model_classes: tuple[list[str], list[Any]], start: str = "",
                 parent: QWidget | None = None) -> None:
        """``model_classes``: the loaded model's names and colors; ``start``: a folder."""
        super().__init__(parent)
        self.setWindowTitle("New Project")
        self.setObjectName("new-project-dialog")
        self.model_classes = model_classes
        self.images: list[Path] = []
        self.classes: tuple = ()
        self._auto_folder = ""
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.images_edit = QLineEdit(self)
        self.images_edit.setPlaceholderText("the folder of your images")
        self.images_browse = QPushButton("Browse…", self)
        form.addRow("Images", _row(self.images_edit, self.images_browse))
        self.reference = QRadioButton("Use them where they are", self)
        self.copy = QRadioButton("Copy them into the project", self)
        self.reference.setChecked(True)
        self._copy_group = QButtonGroup(self)
        self._copy_group.addButton(self.reference)
        self._copy_group.addButton(self.copy)
        form.addRow("", _row(self.reference, self.copy))
        self.images_note = QLabel("", self)
        form.addRow("", self.images_note)
        self.folder_edit = QLineEdit(self)
        self.folder_edit.setPlaceholderText("where the project (masks, classes) is kept")
        self.folder_browse = QPushButton("Browse…", self)
        form.addRow("Project folder", _row(self.folder_edit, self.folder_browse))
        self.source_box = QComboBox(self)
        for key, text in SOURCES.items():
            self.source_box.addItem(text, key)
        form.addRow("Classes from", self.source_box)
        layout.addLayout(form)
        self.stack = QStackedWidget(self)
        self.typed = QPlainTextEdit(self)
        self.typed.setPlaceholderText("one class a line, label 0 first, e.g.\n"
                                      "_background_\ncell\nnucleus")
        self.stack.addWidget(self.typed)
        file_page = QWidget(self)
        self.file_edit = QLineEdit(file_page)
        self.file_browse = QPushButton("Browse…", file_page)
        fl = QVBoxLayout(file_page)
        fl.setContentsMargins(0, 0, 0, 0)
        fl.addLayout(_row(self.file_edit, self.file_browse))
        fl.addStretch(1)
        self.stack.addWidget(file_page)
        for text in ("The labels of every labelme JSON file beside an image: _background_ "
                     "first, then alphabetically.",
                     "The classes (and colors) of the model loaded now."):
            label = QLabel(text, self)
            label.setWordWrap(True)
            label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            self.stack.addWidget(label)
        self.stack.setMaximumHeight(110)
        layout.addWidget(self.stack)
        layout.addWidget(QLabel("Classes (label, color, name):", self))
        self.preview = QListWidget(self)
        layout.addWidget(self.preview, 1)
        self.problem = QLabel("", self)
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #c02020")
        self.problem.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.problem)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.create_button = self.buttons.addButton("Create",
                                                    QDialogButtonBox.ButtonRole.AcceptRole)
        layout.addWidget(self.buttons)
        self.resize(560, 620)

        self.images_browse.clicked.connect(self._browse_images)
        self.folder_browse.clicked.connect(self._browse_folder)
        self.file_browse.clicked.connect(self._browse_file)
        self.images_edit.editingFinished.connect(self.update_images)
        self.folder_edit.textChanged.connect(self.validate)
        self.file_edit.editingFinished.connect(self.update_classes)
        self.typed.textChanged.connect(self.update_classes)
        self.source_box.currentIndexChanged.connect(self._on_source)
        self.buttons.accepted.connect(self._on_create)
        self.buttons.rejected.connect(self.reject)
        if start:
            self.images_edit.setText(start)
            self.update_images()
        self._on_source()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Return in a field reads it; it does not click Create (nor closes the dialog)."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()
            return
        super().keyPressEvent(event)

    # ------------------------------------------------------------------ choices
    @property
    def source(self) -> str:
        """Where the classes come from (TYPED, FILE, LABELME or MODEL)."""
        return str(self.source_box.currentData())

    def set_source(self, key: str) -> None:
        """Choose where the classes come from."""
        self.source_box.setCurrentIndex(self.source_box.findData(key))

    def folder(self) -> Path | None:
        """The project folder chosen."""
        text = self.folder_edit.text().strip()
        return Path(text).expanduser() if text else None

    def copy_images(self) -> bool:
        """Whether the images are copied into the project."""
        return self.copy.isChecked()

    def _browse_images(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Images Folder", self.images_edit.text())
        if folder:
            self.images_edit.setText(folder)
            self.update_images()

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Project Folder", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def _browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Labels File", self.images_edit.text(),
                                              "Class names (*.txt);;All files (*)")
        if path:
            self.file_edit.setText(path)
            self.update_classes()

    def _on_source(self, *_args: object) -> None:
        self.stack.setCurrentIndex(list(SOURCES).index(self.source))
        self.update_classes()

    # ------------------------------------------------------------------ checking
    def update_images(self) -> None:
        """List the images of the images folder; propose the project folder beside them."""
        text = self.images_edit.text().strip()
        self.images = []
        if text:
            root = Path(text).expanduser()
            listing = scan([root]) if root.is_dir() else None
            self.images = [e.image for e in listing.entries] if listing else []
            note = (f"{len(self.images)} image(s)" if self.images else
                    "no images found there" if root.is_dir() else "not a folder")
            self.images_note.setText(note)
            if root.is_dir() and self.folder_edit.text().strip() in ("", self._auto_folder):
                self._auto_folder = str(root / DEFAULT_NAME)
                self.folder_edit.setText(self._auto_folder)
        else:
            self.images_note.setText("")
        if self.source == LABELME:
            self.update_classes()
        self.validate()

    def update_classes(self) -> None:
        """Read the classes from the chosen source and show them (or why not)."""
        from core.annotation import class_sources
        from core.annotation.classes import make_classes
        from core.errors import FCNStudioError

        self.classes, problem, note = (), "", ""
        try:
            if self.source == TYPED:
                if self.typed.toPlainText().strip():
                    self.classes = class_sources.classes_from_text(self.typed.toPlainText())
                else:
                    problem = "Type the classes, one a line (label 0 first)"
            elif self.source == FILE:
                path = self.file_edit.text().strip()
                if path:
                    self.classes = class_sources.classes_from_file(Path(path).expanduser())
                else:
                    problem = "Choose a labels.txt or class_names.txt"
            elif self.source == LABELME:
                files = class_sources.labelme_files_beside(self.images)
                self.classes, skipped = class_sources.classes_from_labelme(files)
                note = f"From {len(files)} labelme file(s)" + (
                    f"; skipped: {'; '.join(skipped[:3])}" if skipped else "")
            else:
                names, colors = self.model_classes
                if not names:
                    problem = "No model is loaded"
                else:
                    self.classes = make_classes(names, colors)
        except FCNStudioError as exc:
            self.classes, problem = (), str(exc)
        self.preview.clear()
        for i, c in enumerate(self.classes):
            self.preview.addItem(QListWidgetItem(swatch(c.color), f"{i}  {c.name}"))
        self._class_problem = problem
        self._class_note = note
        self.validate()

    def validate(self) -> str:
        """Why Create cannot be clicked yet ('' when it can); shown below the preview."""
        from core.annotation.project import PROJECT_FILE

        folder = self.folder()
        problem = ""
        if not self.images:
            problem = "Choose a folder with images"
        elif folder is None:
            problem = "Choose the project folder"
        elif (folder / PROJECT_FILE).exists():
            problem = f"{folder} already holds a project: open it (File > Open Project…)"
        problem = problem or getattr(self, "_class_problem", "")
        self.problem.setText(problem or getattr(self, "_class_note", ""))
        self.problem.setStyleSheet("color: #c02020" if problem else "color: palette(text)")
        self.create_button.setEnabled(not problem)
        return problem

    def _on_create(self) -> None:
        if not self.validate():
            self.createRequested.emit()
