"""Heatmaps: one class's probability (or the entropy) of a variant, a colorbar, thumbnails.

The map is drawn in tiles computed for the visible region only, at the zoom's level
(:mod:`app.canvas.heat_source`); while a prediction lands, the preview's map shows (dimmed)
where tiles have not landed and the thumbnails are the preview's.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.canvas import doc_tiles, overlays
from app.canvas.canvas import ImageCanvas
from app.common.render import probability_image, scalar_image
from app.state.display import VARIANTS, ViewerState
from app.views.colorbar import Colorbar
from app.views.lazy_view import LazyView
from core.outputs.colormaps import DEFAULT_COLORMAP, ENTROPY_COLORMAP

THUMB = 96
ENTROPY_ROW = -1


class HeatmapView(LazyView):
    """A heatmap canvas, its colorbar and a grid of all classes' maps as thumbnails."""

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        """Subscribe to ``state``."""
        super().__init__(parent)
        self.state = state
        self.canvas = ImageCanvas(self)
        self.colorbar = Colorbar(self)
        self.variant_box = QComboBox(self)
        self.variant_box.addItems([f"FCN-{v}" for v in VARIANTS])
        self.class_box = QComboBox(self)
        self.class_box.setMinimumContentsLength(14)
        self.mode_box = QComboBox(self)
        self.mode_box.addItems(["Over the image", "On its own"])
        self.thumbs = QListWidget(self)
        self.thumbs.setViewMode(QListView.ViewMode.IconMode)
        self.thumbs.setIconSize(QSize(THUMB, THUMB))
        self.thumbs.setResizeMode(QListView.ResizeMode.Adjust)
        self.thumbs.setMovement(QListView.Movement.Static)
        self.thumbs.setSpacing(4)
        self.thumbs.setMinimumHeight(THUMB + 48)
        self.thumbs.setMaximumHeight(2 * THUMB + 80)
        self._thumb_key: tuple | None = None

        controls = QHBoxLayout()
        for label, box in (("Variant", self.variant_box), ("Map", self.class_box),
                           ("Show", self.mode_box)):
            controls.addWidget(QLabel(label, self))
            controls.addWidget(box)
        controls.addStretch(1)
        body = QHBoxLayout()
        body.addWidget(self.canvas, 1)
        body.addWidget(self.colorbar)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addLayout(body, 1)
        layout.addWidget(self.thumbs)

        self.variant_box.activated.connect(
            lambda i: state.set_heatmap(variant=VARIANTS[i])
        )
        self.class_box.activated.connect(self._on_class_box)
        self.mode_box.activated.connect(
            lambda i: state.set_heatmap(mode=("overlay", "alone")[i])
        )
        self.thumbs.itemClicked.connect(self._on_thumb)
        for signal in (state.documentChanged, state.modelChanged, state.resultChanged,
                       state.heatmapChanged, state.overlayChanged):
            signal.connect(self.invalidate)
        state.modelChanged.connect(self._fill_classes)
        state.partialChanged.connect(self._on_partial)

    # ------------------------------------------------------------------ controls
    def _fill_classes(self, *_args: object) -> None:
        self.class_box.clear()
        for i, name in enumerate(self.state.class_names()):
            self.class_box.addItem(name, i)
        self.class_box.addItem("Uncertainty (entropy)", ENTROPY_ROW)

    def _on_partial(self, model_id: str, boxes: object) -> None:
        """Tiles of the current prediction landed: recompute the map there only."""
        st = self.state
        if model_id != st.model_id or st.prediction() is not None:
            return
        layer = self.canvas.overlay_layer
        if boxes is None or not self.isVisible() or self._dirty or getattr(
                layer.source, "partial", None) is None:
            self.invalidate()
            return
        for top, left, bottom, right in boxes:  # type: ignore[attr-defined]
            layer.update_region(QRectF(left, top, right - left, bottom - top))

    def _on_class_box(self, row: int) -> None:
        cls = self.class_box.itemData(row)
        if cls == ENTROPY_ROW:
            self.state.set_heatmap(source="entropy")
        else:
            self.state.set_heatmap(cls=int(cls))

    def _on_thumb(self, item: QListWidgetItem) -> None:
        cls = item.data(Qt.ItemDataRole.UserRole)
        if cls == ENTROPY_ROW:
            self.state.set_heatmap(source="entropy")
        else:
            self.state.set_heatmap(cls=int(cls))

    def _sync_controls(self) -> None:
        st = self.state
        self.variant_box.setCurrentIndex(VARIANTS.index(st.heatmap_variant))
        self.mode_box.setCurrentIndex(0 if st.heatmap_mode == "overlay" else 1)
        target = ENTROPY_ROW if st.heatmap_source == "entropy" else st.heatmap_class
        row = self.class_box.findData(target)
        if row >= 0:
            self.class_box.setCurrentIndex(row)

    # ------------------------------------------------------------------ drawing
    def title(self) -> str:
        """What the heatmap shows, e.g. 'P(cat), FCN-8s'."""
        st = self.state
        names = st.class_names()
        if st.heatmap_source == "entropy":
            return f"Entropy, FCN-{st.heatmap_variant}"
        name = names[st.heatmap_class] if 0 <= st.heatmap_class < len(names) else "?"
        return f"P({name}), FCN-{st.heatmap_variant}"

    def refresh(self) -> None:
        """Draw the heatmap, the colorbar and the thumbnails from the state."""
        st, doc = self.state, self.state.document
        self._sync_controls()
        if doc is None:
            self.canvas.set_image(None)
            self.canvas.set_overlay(None)
            self.thumbs.clear()
            self._thumb_key = None
            return
        self.canvas.set_image(doc_tiles.image(doc))
        tiles = doc_tiles.heatmap(
            doc, st.model_id, st.heatmap_variant, st.heatmap_source, st.heatmap_class
        )
        alone = st.heatmap_mode == "alone"
        self.canvas.image_layer.setVisible(not alone)
        self.canvas.set_overlay(tiles, 1.0 if alone else max(st.overlay_opacity, 0.35))
        cmap = ENTROPY_COLORMAP if st.heatmap_source == "entropy" else DEFAULT_COLORMAP
        self.colorbar.set_map(cmap, self.title())
        self._fill_thumbs()

    def _fill_thumbs(self) -> None:
        st, doc = self.state, self.state.document
        pred, part = doc.prediction(st.model_id), doc.partial(st.model_id)
        preview = None if pred is not None or part is None else part.preview
        key = (id(doc), st.model_id, st.heatmap_variant, id(pred), id(preview))
        if key != self._thumb_key:
            self._thumb_key = key
            self.thumbs.clear()
            if preview is not None and st.heatmap_variant in preview.outputs:
                out = preview.outputs[st.heatmap_variant]
                step = max(1, max(out.labels.shape) // THUMB)
                src = out.probabilities(step=step), out.entropy(step=step)
            else:
                src = overlays.thumbnail_source(doc, st.model_id, st.heatmap_variant, THUMB)
            if src is not None:
                probs, entropy = src
                names = st.class_names()
                for c in range(probs.shape[0]):
                    name = names[c] if c < len(names) else f"#{c}"
                    self._add_thumb(probability_image(probs[c]), name, c)
                self._add_thumb(scalar_image(entropy, ENTROPY_COLORMAP), "entropy", ENTROPY_ROW)
        target = ENTROPY_ROW if st.heatmap_source == "entropy" else st.heatmap_class
        for i in range(self.thumbs.count()):
            item = self.thumbs.item(i)
            item.setSelected(item.data(Qt.ItemDataRole.UserRole) == target)

    def _add_thumb(self, buf: object, name: str, cls: int) -> None:
        pixmap = QPixmap.fromImage(buf.image).scaled(  # type: ignore[attr-defined]
            THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        item = QListWidgetItem(QIcon(pixmap), name)
        item.setData(Qt.ItemDataRole.UserRole, cls)
        item.setToolTip(f"{name}: click to show")
        self.thumbs.addItem(item)
