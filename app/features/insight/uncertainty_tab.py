"""The Uncertainty tab: a source chooser, the overlay switch, the image score and the ranked
"correct next" regions (a click centres and zooms the viewer there)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.features.insight.results import RegionInfo, UncertaintyResult
from app.features.insight.tiles import set_note

SOURCES: dict[str, str] = {
    "combined": "Combined",
    "entropy": "Softmax entropy",
    "mc_entropy": "MC dropout (entropy)",
    "mc_mutual_information": "MC dropout (mutual information)",
    "flip": "Flip TTA",
    "variants": "32s / 16s / 8s disagreement",
}
"""The chooser's sources (``core.insight.uncertainty`` maps, and their mean) and names."""
TIPS: dict[str, str] = {
    "combined": "The mean of MC dropout's entropy, flip TTA and the 32s/16s/8s disagreement",
    "entropy": "The softmax entropy of the prediction (free)",
    "mc_entropy": "Monte Carlo dropout: the entropy of the mean of 16 predictions with "
                  "drop6/drop7 active (on the cached fc6: the trunk runs once)",
    "mc_mutual_information": "Monte Carlo dropout: the mutual information between the "
                             "prediction and the dropped units (the model's own doubt, BALD)",
    "flip": "Test-time augmentation: how much the mirrored image's prediction, mirrored "
            "back, differs",
    "variants": "The Jensen-Shannon divergence of the FCN-32s, 16s and 8s predictions",
}


class UncertaintyTab(QWidget):
    """Shows an :class:`UncertaintyResult` for the chosen source.

    Signals:
        sourceChosen(str): another source.
        overlayToggled(bool): show the map on the viewer or not.
        regionChosen(object): a :class:`RegionInfo` of the list was clicked.
    """

    sourceChosen = Signal(str)
    overlayToggled = Signal(bool)
    regionChosen = Signal(object)

    def __init__(self, next_action: QAction | None = None, parent: QWidget | None = None
                 ) -> None:
        """Empty until a result arrives; ``next_action`` is "Next image to correct"."""
        super().__init__(parent)
        self.result: UncertaintyResult | None = None
        self.names: list[str] = []
        self.source_box = QComboBox(self)
        for key, name in SOURCES.items():
            self.source_box.addItem(name, key)
            self.source_box.setItemData(self.source_box.count() - 1, TIPS[key],
                                        Qt.ItemDataRole.ToolTipRole)
        self.overlay_box = QCheckBox("Show on the viewer", self)
        self.overlay_box.setChecked(True)
        self.score_label = QLabel("", self)
        self.score_label.setWordWrap(True)
        self.regions = QListWidget(self)
        self.regions.setMinimumHeight(140)
        self.note = QLabel("", self)
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #c08000;")
        top = QHBoxLayout()
        top.addWidget(QLabel("Source", self))
        top.addWidget(self.source_box, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.note)
        layout.addWidget(self.overlay_box)
        layout.addWidget(self.score_label)
        layout.addWidget(QLabel("<b>Correct next</b> (most uncertain regions first; click one "
                                "to go there)", self))
        layout.addWidget(self.regions, 1)
        if next_action is not None:
            button = QToolButton(self)
            button.setDefaultAction(next_action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            layout.addWidget(button)
        self.source_box.activated.connect(lambda _i: self._on_source())
        self.overlay_box.toggled.connect(self.overlayToggled)
        self.regions.itemClicked.connect(self._on_region)
        set_note(self.note, "")

    @property
    def source(self) -> str:
        """The chosen source."""
        return str(self.source_box.currentData())

    @property
    def overlay_on(self) -> bool:
        """Whether the map is shown on the viewer."""
        return self.overlay_box.isChecked()

    def set_classes(self, names: Sequence[str]) -> None:
        """The model's class names (to name the regions)."""
        self.names = list(names)

    def clear(self, text: str = "") -> None:
        """Forget the shown result; ``text`` says why."""
        self.result = None
        self.regions.clear()
        self.score_label.setText(text)
        set_note(self.note, "")

    def show_result(self, result: UncertaintyResult) -> None:
        """An image's maps, for the chosen source."""
        self.result = result
        set_note(self.note, result.scale.note())
        self._fill()

    def region_items(self) -> list[RegionInfo]:
        """The regions listed, in order."""
        return [self.regions.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(self.regions.count())]

    def _on_source(self) -> None:
        self._fill()
        self.sourceChosen.emit(self.source)

    def _fill(self) -> None:
        r, source = self.result, self.source
        self.regions.clear()
        if r is None or source not in r.maps:
            return
        seconds = r.seconds
        self.score_label.setText(
            f"Image score (mean uncertainty of FCN-{r.variant}): <b>{r.scores[source]:.3f}</b>"
            f" ({TIPS[source][0].lower()}{TIPS[source][1:]}). MC dropout took "
            f"{seconds.get('mc_dropout', 0):.1f} s, flip {seconds.get('flip', 0):.1f} s.")
        for n, region in enumerate(r.regions.get(source, []), start=1):
            name = self.names[region.label] if 0 <= region.label < len(self.names) else "?"
            x0, y0, x1, y1 = region.box
            item = QListWidgetItem(f"{n}. {name}: {region.area:,} px, mean {region.mean:.2f} "
                                   f"(mass {region.mass:.0f})")
            item.setData(Qt.ItemDataRole.UserRole, region)
            item.setToolTip(f"{x1 - x0}×{y1 - y0} px box at ({x0}, {y0}) of the analysed image")
            self.regions.addItem(item)
        if not self.regions.count():
            self.regions.addItem("No uncertain region: the model is sure everywhere.")

    def _on_region(self, item: QListWidgetItem) -> None:
        region = item.data(Qt.ItemDataRole.UserRole)
        if region is not None:
            self.regionChosen.emit(region)
