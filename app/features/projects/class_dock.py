"""ProjectDock: the open project's classes, their editor, and the model-mismatch banner.

The list shows the project's classes (label, color, name) from
:class:`~app.state.project_classes.ProjectClasses`, the one owner, and follows it. Each
button makes one core class edit (:mod:`core.annotation.classes`) and applies it through
:mod:`app.services.class_edits` (masks saved first, every mask renumbered crash-safe, the
renumbering said in Messages); *Undo* takes the last one back. Merging and deleting ask
first (:attr:`ProjectDock.confirm`), saying which pixels change and what is renumbered.
Labels a labelme file has and the project lacks are offered here (not in a modal
question): *Add and import* adds them (one class edit) and imports the files again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.features.host import AppContext
from app.panels.legend import swatch
from app.services import class_edits

Color = tuple[int, int, int]
VOID_CHOICE = -1


def _pick_color(initial: Color) -> Color | None:
    from PySide6.QtWidgets import QColorDialog

    color = QColorDialog.getColor(QColor(*initial), None, "Class Color")
    return (color.red(), color.green(), color.blue()) if color.isValid() else None


def _confirm(text: str) -> bool:
    from PySide6.QtWidgets import QApplication, QMessageBox

    return (
        QMessageBox.question(QApplication.activeWindow(), "Change the Classes", text)
        == QMessageBox.StandardButton.Yes
    )


class ProjectDock(QWidget):
    """The Project dock.

    Attributes:
        pick_color: ``pick_color(current) -> (r, g, b) | None`` (default: a color dialog).
        confirm: ``confirm(text) -> bool`` before a merge or delete (default: a question).

    Signals:
        openProjectRequested(): "Open another project…" was clicked in the banner.
        newProjectRequested(): "New Project…" was clicked (no project open).
    """

    openProjectRequested = Signal()
    newProjectRequested = Signal()

    def __init__(self, context: AppContext, new_model: Any, parent: QWidget | None = None) -> None:
        """Build the dock over ``context.projects`` (``new_model``: the shell's action)."""
        super().__init__(parent)
        self.context = context
        self.projects = context.projects
        self.classes = context.projects.classes
        self.pick_color: Callable[[Color], Color | None] = _pick_color
        self.confirm: Callable[[str], bool] = _confirm
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.title = QLabel(self)
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.title)

        self.banner = QFrame(self)
        self.banner.setObjectName("model-mismatch")
        self.banner.setStyleSheet(
            "#model-mismatch { background: #fff4d6; border: 1px solid "
            "#e0b850; border-radius: 4px; }"
        )
        b = QVBoxLayout(self.banner)
        b.setContentsMargins(6, 4, 6, 4)
        self.banner_text = QLabel(self.banner)
        self.banner_text.setWordWrap(True)
        b.addWidget(self.banner_text)
        row = QHBoxLayout()
        self.map_button = QPushButton("Map classes by name", self.banner)
        self.map_button.setCheckable(True)
        self.map_button.setToolTip(
            "Show the model's predictions in the project's classes and "
            "start masks from them: a class of the same name, "
            "unmatched ones void"
        )
        self.new_model_button = QToolButton(self.banner)
        self.new_model_button.setDefaultAction(new_model)
        short = "New model for these classes…"  # (the action's own text is long)
        self.new_model_button.setText(short)
        new_model.changed.connect(lambda: self.new_model_button.setText(short))
        self.other_button = QPushButton("Open another project…", self.banner)
        for w in (self.map_button, self.other_button):
            row.addWidget(w)
        row.addStretch(1)
        first = QHBoxLayout()  # two rows: the banner fits a narrow dock
        first.addWidget(self.new_model_button)
        first.addStretch(1)
        b.addLayout(first)
        b.addLayout(row)
        layout.addWidget(self.banner)

        self.offer = QFrame(self)
        self.offer.setObjectName("label-offer")
        self.offer.setStyleSheet(
            "#label-offer { background: #e6f0ff; border: 1px solid #7aa0e0; border-radius: 4px; }"
        )
        o = QVBoxLayout(self.offer)
        o.setContentsMargins(6, 4, 6, 4)
        self.offer_text = QLabel(self.offer)
        self.offer_text.setWordWrap(True)
        o.addWidget(self.offer_text)
        row = QHBoxLayout()
        self.accept_offer_button = QPushButton("Add them and import", self.offer)
        self.dismiss_offer_button = QPushButton("Dismiss", self.offer)
        row.addWidget(self.accept_offer_button)
        row.addWidget(self.dismiss_offer_button)
        row.addStretch(1)
        o.addLayout(row)
        layout.addWidget(self.offer)
        self.offers: list[Any] = []

        self.empty = QWidget(self)
        e = QVBoxLayout(self.empty)
        e.setContentsMargins(0, 0, 0, 0)
        note = QLabel(
            "No project is open. A project is a folder of images with your own "
            "classes; masks are saved in it.",
            self.empty,
        )
        note.setWordWrap(True)
        e.addWidget(note)
        self.new_button = QPushButton("New Project…", self.empty)
        e.addWidget(self.new_button)
        layout.addWidget(self.empty)

        self.editor = QWidget(self)
        ed = QVBoxLayout(self.editor)
        ed.setContentsMargins(0, 0, 0, 0)
        self.table = QTreeWidget(self.editor)
        self.table.setColumnCount(2)
        self.table.setHeaderLabels(["Label", "Class"])
        self.table.setRootIsDecorated(False)
        self.table.setUniformRowHeights(True)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.header().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumHeight(5 * self.table.fontMetrics().height() + 30)
        ed.addWidget(self.table, 1)
        grid = QGridLayout()
        self.name_edit = QLineEdit(self.editor)
        self.name_edit.setPlaceholderText("class name")
        self.add_button = QPushButton("Add", self.editor)
        self.rename_button = QPushButton("Rename", self.editor)
        grid.addWidget(self.name_edit, 0, 0, 1, 2)
        grid.addWidget(self.add_button, 0, 2)
        grid.addWidget(self.rename_button, 0, 3)
        self.color_button = QPushButton("Color…", self.editor)
        self.up_button = QPushButton("Up", self.editor)
        self.down_button = QPushButton("Down", self.editor)
        grid.addWidget(self.color_button, 1, 0)
        grid.addWidget(self.up_button, 1, 2)
        grid.addWidget(self.down_button, 1, 3)
        self.merge_box = QComboBox(self.editor)
        self.merge_button = QPushButton("Merge", self.editor)
        self.merge_button.setToolTip(
            "Merge the selected class into this one: its pixels become this class in every mask"
        )
        grid.addWidget(QLabel("Into", self.editor), 2, 0)
        grid.addWidget(self.merge_box, 2, 1, 1, 2)
        grid.addWidget(self.merge_button, 2, 3)
        self.delete_box = QComboBox(self.editor)
        self.delete_button = QPushButton("Delete", self.editor)
        self.delete_button.setToolTip(
            "Delete the selected class: its pixels become void (or the class chosen) in every mask"
        )
        grid.addWidget(QLabel("Pixels to", self.editor), 3, 0)
        grid.addWidget(self.delete_box, 3, 1, 1, 2)
        grid.addWidget(self.delete_button, 3, 3)
        ed.addLayout(grid)
        undo_row = QHBoxLayout()
        self.undo_button = QPushButton("Undo Class Edit", self.editor)
        self.last_label = QLabel("", self.editor)
        self.last_label.setWordWrap(True)
        undo_row.addWidget(self.undo_button)
        undo_row.addWidget(self.last_label, 1)
        ed.addLayout(undo_row)
        layout.addWidget(self.editor, 1)

        self.table.itemSelectionChanged.connect(self._on_selection)
        self.add_button.clicked.connect(self.add)
        self.rename_button.clicked.connect(self.rename)
        self.name_edit.returnPressed.connect(self.add)
        self.color_button.clicked.connect(self.recolor)
        self.up_button.clicked.connect(lambda: self.move(-1))
        self.down_button.clicked.connect(lambda: self.move(1))
        self.merge_button.clicked.connect(self.merge)
        self.delete_button.clicked.connect(self.delete)
        self.undo_button.clicked.connect(self.undo)
        self.accept_offer_button.clicked.connect(self.accept_offers)
        self.dismiss_offer_button.clicked.connect(self.dismiss_offers)
        self.projects.labelsOffered.connect(self.add_offer)
        self.projects.projectChanged.connect(self.dismiss_offers)
        self.map_button.toggled.connect(self.classes.set_map_by_name)
        self.other_button.clicked.connect(self.openProjectRequested)
        self.new_button.clicked.connect(self.newProjectRequested)
        self.classes.classesChanged.connect(self.refresh)
        self.classes.mappingChanged.connect(self.refresh)
        context.models.changed.connect(self.refresh)
        self.projects.classesEdited.connect(self.refresh)
        self.projects.saved.connect(self._show_title)
        self.offer.hide()
        self.refresh()

    # ------------------------------------------------------------------ showing
    def selected(self) -> int | None:
        """The selected class's label, or None."""
        items = self.table.selectedItems()
        return int(items[0].data(0, Qt.ItemDataRole.UserRole)) if items else None

    def select(self, label: int) -> None:
        """Select the class of ``label``."""
        if 0 <= label < self.table.topLevelItemCount():
            self.table.setCurrentItem(self.table.topLevelItem(label))

    def refresh(self, *_args: object) -> None:
        """Show the project's classes, the banner and what can be done."""
        keep = self.selected()
        is_open = self.classes.is_open
        self.empty.setVisible(not is_open)
        self.editor.setVisible(is_open)
        self.table.clear()
        for i, (name, rgb) in enumerate(zip(self.classes.names, self.classes.colors, strict=True)):
            item = QTreeWidgetItem([str(i), name])
            item.setIcon(1, swatch(rgb))
            item.setData(0, Qt.ItemDataRole.UserRole, i)
            item.setTextAlignment(0, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.addTopLevelItem(item)
        if keep is not None:
            self.select(min(keep, self.table.topLevelItemCount() - 1))
        self._show_title()
        self._show_banner()
        self._on_selection()
        last = class_edits.last_edit(self.projects)
        self.undo_button.setEnabled(last is not None)
        self.last_label.setText(f"Last: {last.description}" if last is not None else "")
        self.undo_button.setToolTip(
            f"Undo: {last.summary()}" if last is not None else "No class edit to undo"
        )

    def _show_title(self, *_args: object) -> None:
        project = self.projects.project
        if project is None:
            self.title.setText("<b>No project</b>")
            return
        masks = len(project.labeled_ids())
        self.title.setText(
            f"<b>{project.folder.name}</b> · {len(project)} image(s) · "
            f"{masks} mask(s) · {len(project.classes)} classes"
        )
        self.title.setToolTip(str(project.folder))

    def _show_banner(self) -> None:
        names = self.context.models.class_names()
        differs = self.classes.model_differs(names)
        self.banner.setVisible(differs)
        if not differs:
            return
        model = self.context.models.info
        label = getattr(model, "name", "") or "The loaded model"
        text = (
            f"<b>{label}</b> has other classes than this project "
            f"({', '.join(names[:6])}{' …' if len(names) > 6 else ''}). Masks stay in "
            "the project's classes."
        )
        if self.classes.map_by_name:
            text += f" Mapped by name: {self.classes.describe_mapping(names)}."
        self.banner_text.setText(text)
        self.map_button.blockSignals(True)
        self.map_button.setChecked(self.classes.map_by_name)
        self.map_button.blockSignals(False)
        self.map_button.setText(
            "✓ Mapped by name" if self.classes.map_by_name else "Map classes by name"
        )

    def _on_selection(self) -> None:
        i = self.selected()
        n = len(self.classes.names)
        has = i is not None
        if has:
            self.name_edit.setText(self.classes.names[i])
        for w in (self.rename_button, self.color_button, self.merge_button, self.delete_button):
            w.setEnabled(has)
        self.up_button.setEnabled(has and i > 0)
        self.down_button.setEnabled(has and i < n - 1)
        self.merge_button.setEnabled(has and n > 1)
        self.delete_button.setEnabled(has and n > 1)
        self.merge_box.clear()
        self.delete_box.clear()
        self.delete_box.addItem("void (255)", VOID_CHOICE)
        for k, (name, rgb) in enumerate(zip(self.classes.names, self.classes.colors, strict=True)):
            if k != i:
                self.merge_box.addItem(swatch(rgb), f"{k}  {name}", k)
                self.delete_box.addItem(swatch(rgb), f"{k}  {name}", k)

    # ------------------------------------------------------------------ offered labels
    def add_offer(self, offer: Any) -> None:
        """Offer to add the labels of ``offer`` (a LabelOffer) to the project's classes."""
        self.offers = [o for o in self.offers if o.source != offer.source] + [offer]
        labels: list[str] = []
        for o in self.offers:
            labels += [x for x in o.labels if x not in labels]
        files = ", ".join(o.source.name for o in self.offers[:4])
        more = f" and {len(self.offers) - 4} more" if len(self.offers) > 4 else ""
        self.offer_text.setText(
            f"{files}{more}: the label(s) {', '.join(repr(x) for x in labels)} are not classes "
            "of this project. Add them at the end of the class list and import the "
            "file(s)? (Undo Class Edit takes them back.)"
        )
        self.offer.show()

    def accept_offers(self) -> bool:
        """Add the offered labels (one class edit) and import their files again."""
        offers, self.offers = self.offers, []
        self.offer.hide()
        class_edits.accept_offers(self.projects, offers)
        return bool(offers)

    def dismiss_offers(self, *_args: object) -> None:
        """Forget the offers (the files stay not imported)."""
        self.offers = []
        self.offer.hide()

    # ------------------------------------------------------------------ edits
    def _apply(self, make: Callable[[tuple], Any], confirm: bool = False) -> bool:
        from core.errors import FCNStudioError

        project = self.projects.project
        if project is None:
            return False
        try:
            edit = make(project.classes)
        except FCNStudioError as exc:
            self.context.notifications.notify(f"Classes not changed: {exc}", "error")
            return False
        masks = len(project.labeled_ids())
        if confirm and not self.confirm(
            f"{edit.summary()}.\n\nEvery mask of the project ({masks}) is rewritten. "
            "Undo Class Edit takes it back."
        ):
            return False
        return class_edits.apply_class_edit(self.projects, edit) is not None

    def add(self) -> bool:
        """Add a class named as the name field says."""
        from core.annotation.classes import add_class

        name = self.name_edit.text()
        ok = self._apply(lambda c: add_class(c, name))
        if ok:
            self.select(len(self.classes.names) - 1)
        return ok

    def rename(self) -> bool:
        """Rename the selected class to the name field's text."""
        from core.annotation.classes import rename_class

        i, name = self.selected(), self.name_edit.text()
        return i is not None and self._apply(lambda c: rename_class(c, i, name))

    def recolor(self) -> bool:
        """Choose another color for the selected class."""
        from core.annotation.classes import recolor_class

        i = self.selected()
        if i is None:
            return False
        color = self.pick_color(self.classes.colors[i])
        return color is not None and self._apply(lambda c: recolor_class(c, i, color))

    def move(self, delta: int) -> bool:
        """Move the selected class up (-1) or down (+1): labels between are renumbered."""
        from core.annotation.classes import move_class

        i = self.selected()
        if i is None or not 0 <= i + delta < len(self.classes.names):
            return False
        ok = self._apply(lambda c: move_class(c, i, i + delta))
        if ok:
            self.select(i + delta)
        return ok

    def merge(self) -> bool:
        """Merge the selected class into the one chosen."""
        from core.annotation.classes import merge_classes

        i, into = self.selected(), self.merge_box.currentData()
        return (
            i is not None
            and into is not None
            and self._apply(lambda c: merge_classes(c, i, int(into)), confirm=True)
        )

    def delete(self) -> bool:
        """Delete the selected class; its pixels become void or the class chosen."""
        from core.annotation.classes import delete_class

        i, into = self.selected(), self.delete_box.currentData()
        into = None if into in (None, VOID_CHOICE) else int(into)
        return i is not None and self._apply(lambda c: delete_class(c, i, into), confirm=True)

    def undo(self) -> bool:
        """Take the last class edit back."""
        return class_edits.undo_class_edit(self.projects) is not None
