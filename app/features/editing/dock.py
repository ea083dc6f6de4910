"""EditDock: the Annotate panel (start, tools, class, size, eraser, paint-only-over, refinement,
history)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QUndoView,
    QVBoxLayout,
    QWidget,
)

from app.features.editing.edit_actions import EditActions
from app.features.editing.manager import START_CHOICES, EditingManager
from app.features.editing.tool_controller import MAX_SIZE, MIN_SIZE, TOOLS
from app.panels.legend import swatch

MASK_FILE = "file"
TOOL_COLUMNS = 3


class EditDock(QWidget):
    """Controls of the editor; it only calls the manager, the tools and the actions."""

    def __init__(
        self, manager: EditingManager, actions: EditActions, parent: QWidget | None = None
    ) -> None:
        """Build the panel and follow ``manager``."""
        super().__init__(parent)
        self.manager, self.actions = manager, actions
        tools = manager.tools
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)

        start_row = QHBoxLayout()
        self.start_box = QComboBox(self)
        for key, text in START_CHOICES.items():
            self.start_box.addItem(text, key)
        self.start_box.addItem("Mask file…", MASK_FILE)
        self.start_box.setCurrentIndex(self.start_box.findData(manager.start_choice))
        self.start_box.setToolTip("What a new mask starts from (also when annotating a new image)")
        self.start_button = QPushButton("Start", self)
        self.start_button.setToolTip("Start (or restart, undoably) this image's mask")
        self.annotate_button = QToolButton(self)
        self.annotate_button.setDefaultAction(actions.annotate)
        start_row.addWidget(QLabel("From", self))
        start_row.addWidget(self.start_box, 1)
        start_row.addWidget(self.start_button)
        start_row.addWidget(self.annotate_button)
        layout.addLayout(start_row)
        self.source_label = QLabel("", self)
        self.source_label.setWordWrap(True)
        layout.addWidget(self.source_label)

        grid = QGridLayout()
        for i, tool in enumerate(TOOLS):
            button = QToolButton(self)
            button.setDefaultAction(actions.tools[tool])
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
            grid.addWidget(button, i // TOOL_COLUMNS, i % TOOL_COLUMNS)
        layout.addLayout(grid)

        form = QFormLayout()
        self.class_box = QComboBox(self)
        self.class_box.setToolTip("Class to paint (digits on the canvas, or click the legend)")
        self.size_spin = QSpinBox(self)
        self.size_spin.setRange(MIN_SIZE, MAX_SIZE)
        self.size_spin.setSuffix(" px")
        self.size_spin.setValue(tools.size)
        self.size_spin.setToolTip("Brush size: [ and ], or Ctrl+wheel on the canvas")
        self.eraser_box = QComboBox(self)
        self.eraser_box.addItem("background (0)", 0)
        self.eraser_box.addItem("void (255, ignored in training)", 255)
        self.preserve_box = QComboBox(self)
        self.preserve_box.setToolTip("Paint only over pixels of this class")
        form.addRow("Class", self.class_box)
        form.addRow("Size", self.size_spin)
        form.addRow("Eraser to", self.eraser_box)
        form.addRow("Paint over", self.preserve_box)
        self.contiguous_box = QCheckBox("Contiguous region only", self)
        self.contiguous_box.setChecked(tools.fill_contiguous)
        self.contiguous_box.setToolTip("Fill (and the magic wand) take the clicked region "
                                       "(on) or every pixel of the clicked class (colour) "
                                       "in the image (off)")
        form.addRow("Fill, wand", self.contiguous_box)
        refine_row = QHBoxLayout()
        self.refine_buttons: list[QToolButton] = []
        for action, text in ((actions.refine, "Whole Mask (R)"),
                             (actions.refine_visible, "Part in View (Shift+R)")):
            action.setIconText(text)
            button = QToolButton(self)
            button.setDefaultAction(action)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
            refine_row.addWidget(button)
            self.refine_buttons.append(button)
        form.addRow("Refine to edges", refine_row)
        layout.addLayout(form)
        self._options_at = layout.count()  # (the feature's other tool options go here)

        undo_row = QHBoxLayout()
        # the buttons say Undo / Redo (the menu and the history name the step): the action's
        # text ("Undo refine with image edges") widened the dock and moved the canvas
        actions.undo.setIconText("Undo")
        actions.redo.setIconText("Redo")
        for action in (actions.undo, actions.redo, actions.save):
            button = QToolButton(self)
            button.setDefaultAction(action)
            undo_row.addWidget(button)
        undo_row.addStretch(1)
        layout.addLayout(undo_row)
        self.history = QUndoView(manager.undo_group, self)
        self.history.setEmptyLabel("<start>")
        layout.addWidget(self.history, 1)
        self.project_label = QLabel("", self)
        self.project_label.setWordWrap(True)
        self.project_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.project_label)

        self.start_box.activated.connect(self._on_start_choice)
        self.start_button.clicked.connect(self._on_start)
        self.class_box.activated.connect(lambda i: tools.set_class(self.class_box.itemData(i)))
        self.size_spin.valueChanged.connect(tools.set_size)
        self.eraser_box.activated.connect(
            lambda i: tools.set_eraser_value(self.eraser_box.itemData(i)))
        self.preserve_box.activated.connect(
            lambda i: tools.set_preserve(self.preserve_box.itemData(i)))
        self.contiguous_box.toggled.connect(tools.set_fill_contiguous)
        tools.fillModeChanged.connect(self.contiguous_box.setChecked)
        tools.classChanged.connect(self._show_class)
        tools.sizeChanged.connect(self.size_spin.setValue)
        tools.eraserChanged.connect(
            lambda v: self.eraser_box.setCurrentIndex(self.eraser_box.findData(v)))
        tools.preserveChanged.connect(
            lambda c: self.preserve_box.setCurrentIndex(
                self.preserve_box.findData(-1 if c is None else c)))
        manager.state.modelChanged.connect(self._fill_classes)
        manager.classes.classesChanged.connect(self._fill_classes)  # the project's classes
        manager.sessionChanged.connect(self._show_source)
        manager.stateChanged.connect(self._show_source)
        manager.projects.projectChanged.connect(self._show_project)
        manager.projects.saved.connect(self._show_source)
        manager.projects.saveFailed.connect(self._show_source)
        self._fill_classes()
        self._show_source()
        self._show_project()

    def add_tool_options(self, widget: QWidget) -> None:
        """Put ``widget`` (more tools' options) under the tool options."""
        self.layout().insertWidget(self._options_at, widget)
        self._options_at += 1

    def _on_start_choice(self, index: int) -> None:
        key = self.start_box.itemData(index)
        if key != MASK_FILE:
            self.manager.start_choice = key

    def _on_start(self) -> None:
        key = self.start_box.currentData()
        if key == MASK_FILE:
            self.actions.start_file.trigger()
        else:
            self.manager.start(key)

    def _fill_classes(self, *_args: object) -> None:
        st = self.manager.state
        self.class_box.clear()
        self.preserve_box.clear()
        self.preserve_box.addItem("any class", -1)
        for i, (name, rgb) in enumerate(zip(st.mask_class_names(), st.mask_colors(),
                                            strict=False)):
            self.class_box.addItem(swatch(rgb), f"{i}  {name}", i)
            self.preserve_box.addItem(swatch(rgb), f"only {name}", i)
        self._show_class(self.manager.tools.cls)

    def _show_class(self, cls: int) -> None:
        index = self.class_box.findData(cls)
        if index >= 0:
            self.class_box.setCurrentIndex(index)

    def _show_source(self, *_args: object) -> None:
        session = self.manager.session
        if session is None:
            self.source_label.setText("No mask for this image yet: choose where it starts "
                                      "from and press Start (or turn Annotate on).")
            return
        state = "unsaved changes" if session.dirty else "saved"
        if session.save_error:
            state = f"<span style='color:#d22'>NOT saved: {session.save_error}</span>"
        self.source_label.setText(f"Mask from {session.source} · {state}")

    def _show_project(self, *_args: object) -> None:
        folder = self.manager.projects.folder
        self.project_label.setText(
            f"Project: {folder}" if folder else "Project: next to the images (created on the "
            "first save; File > Project Folder… to choose)")
