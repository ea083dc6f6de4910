"""The "Model set" dialog: the checkpoint each compare pane (32s, 16s, 8s) takes its output from."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.common.checkpoints import CheckpointSummary, library, summarize
from app.state.display import VARIANTS
from app.state.model_set import ModelSet
from core.errors import CheckpointError

BROWSE = "__browse__"
"""Item data of the "Other checkpoint…" entry."""


class ModelSetDialog(QDialog):
    """A combo box per variant pane: the current model, a library checkpoint or another file.

    On OK the choice is applied to the :class:`ModelSet`.
    """

    def __init__(self, model_set: ModelSet, current_name: str, extra: list[Path] | None = None,
                 start_dir: str = "", parent: QWidget | None = None) -> None:
        """List the library (``cache_dir()/models``) plus ``extra`` checkpoints."""
        super().__init__(parent)
        self.setWindowTitle("Model Set for the Compare View")
        self.setObjectName("model-set-dialog")
        self.model_set = model_set
        self.current_name = current_name or "none loaded"
        self.extra = list(extra or [])
        self.start_dir = start_dir
        self.summaries: dict[str, CheckpointSummary] = {}
        intro = QLabel(
            "Each pane shows <i>its</i> model's output of the pane's variant, e.g. the "
            "paper's three nets: FCN-32s, FCN-16s and FCN-8s, each from its own checkpoint. "
            "The default is the current model for all three.", self)
        intro.setWordWrap(True)
        form = QFormLayout()
        self.combos: dict[str, QComboBox] = {}
        self.notes: dict[str, QLabel] = {}
        for variant in VARIANTS:
            combo = QComboBox(self)
            combo.setMinimumWidth(420)
            combo.activated.connect(lambda _i, v=variant: self._on_activated(v))
            note = QLabel("", self)
            note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.combos[variant], self.notes[variant] = combo, note
            box = QVBoxLayout()
            box.setSpacing(1)
            box.addWidget(combo)
            box.addWidget(note)
            form.addRow(f"FCN-{variant} pane:", box)
        self.problem = QLabel("", self)
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #c0281e")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        self.paper_button = QPushButton("The Paper's Three Models", self)
        self.paper_button.setToolTip("A checkpoint converted from each reference net: FCN-32s "
                                     "for the 32s pane, FCN-16s for 16s, FCN-8s for 8s")
        self.reset_button = QPushButton("Current Model for All", self)
        buttons.addButton(self.paper_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.reset_button, QDialogButtonBox.ButtonRole.ResetRole)
        self.paper_button.clicked.connect(self.use_paper_models)
        self.reset_button.clicked.connect(self.use_current_model)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(buttons)
        self._fill()

    # ------------------------------------------------------------------ public API
    def choice(self) -> dict[str, CheckpointSummary | None]:
        """The checkpoint chosen per variant (None: the current model)."""
        return {v: self.summaries.get(c.currentData()) for v, c in self.combos.items()}

    def select(self, variant: str, path: str | os.PathLike[str] | None) -> bool:
        """Choose a checkpoint (None: the current model) for a pane; False if unreadable."""
        combo = self.combos[variant]
        if path is None:
            combo.setCurrentIndex(0)
            self._update_note(variant)
            return True
        key = self._add(Path(path))
        if key is None:
            return False
        combo.setCurrentIndex(combo.findData(key))
        self._update_note(variant)
        return True

    def use_paper_models(self) -> bool:
        """Pick, per pane, a checkpoint converted from that variant's reference net."""
        by_variant: dict[str, CheckpointSummary] = {}
        for s in self.summaries.values():
            if s.variant in VARIANTS and not s.training.get("at_once"):
                by_variant.setdefault(s.variant, s)
        missing = [v for v in VARIANTS if v not in by_variant]
        if missing:
            self.problem.setText(
                "No converted FCN-" + ", FCN-".join(missing) + " checkpoint in the library: "
                "import or download the reference nets first (Model menu)."
            )
            return False
        for v in VARIANTS:
            self.select(v, by_variant[v].path)
        self.problem.setText("")
        return True

    def use_current_model(self) -> None:
        """Choose the current model for every pane."""
        for v in VARIANTS:
            self.select(v, None)

    def accept(self) -> None:
        """Apply the choice to the model set and close."""
        self.model_set.set_members(self.choice())
        super().accept()

    # ------------------------------------------------------------------ internals
    def _fill(self) -> None:
        members = [m for m in self.model_set.members.values() if m is not None]
        extra = tuple(self.extra) + tuple(m.path for m in members)
        for s in library(extra):
            self.summaries[str(s.path.resolve())] = s
        for variant, combo in self.combos.items():
            combo.clear()
            combo.addItem(f"Current model ({self.current_name})", None)
            for key, s in self.summaries.items():
                combo.addItem(f"{s.name} — {s.path.name}", key)
                combo.setItemData(combo.count() - 1, str(s.path), Qt.ItemDataRole.ToolTipRole)
            combo.addItem("Other checkpoint…", BROWSE)
            member = self.model_set.member(variant)
            if member is not None:
                combo.setCurrentIndex(max(0, combo.findData(str(member.path.resolve()))))
            self._update_note(variant)

    def _add(self, path: Path) -> str | None:
        key = str(path.resolve())
        if key in self.summaries:
            return key
        try:
            summary = summarize(path)
        except CheckpointError as exc:
            self.problem.setText(str(exc))
            return None
        self.summaries[key] = summary
        for combo in self.combos.values():
            combo.insertItem(combo.count() - 1, f"{summary.name} — {path.name}", key)
        self.problem.setText("")
        return key

    def _on_activated(self, variant: str) -> None:
        combo = self.combos[variant]
        if combo.currentData() == BROWSE:
            path, _ = QFileDialog.getOpenFileName(
                self, f"Checkpoint for the FCN-{variant} Pane", self.start_dir,
                "FCN Studio checkpoints (*.safetensors);;All files (*)",
            )
            if not path or not self.select(variant, path):
                combo.setCurrentIndex(0)
        self._update_note(variant)

    def _update_note(self, variant: str) -> None:
        s = self.summaries.get(self.combos[variant].currentData())
        self.notes[variant].setText(
            f"<small>{s.describe()}</small>" if s else
            f"<small>the current model's own {variant} output</small>"
        )
