"""The main viewer: one canvas with the image, a mask overlay and optional disagreement marks.

Every layer draws tiles of the level the zoom needs (:mod:`app.canvas.tiles`), so a 100 MP
image pans and zooms like a small one. While a prediction lands, the overlay shows the
preview (dimmed and hatched, with a caption) and each tile replaces it as it arrives; only
the landed tiles' regions are redrawn. The part in view is written to the document
(``view_region``) so that a prediction started now finishes it first.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.canvas import doc_tiles
from app.canvas.canvas import ImageCanvas
from app.canvas.layers import Z_MARKS, ArrayImageItem
from app.canvas.pending import Z_PENDING, PendingLayer
from app.state.display import REFERENCE, ViewerState
from app.state.partial import PartialResult
from app.views.lazy_view import LazyView


class ViewerView(LazyView):
    """Shows the current document with the chosen overlay (a variant or the reference)."""

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        """Subscribe to ``state``."""
        super().__init__(parent)
        self.state = state
        self.canvas = ImageCanvas(self)
        self.marks_layer = self.canvas.add_layer("marks", ArrayImageItem("marks"), Z_MARKS)
        self.pending_layer = self.canvas.add_layer("pending", PendingLayer(), Z_PENDING)
        self.pending_layer.hide()
        self.placeholder = QLabel(
            "Open images or a folder (File > Open, or drop them here)", self
        )
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.caption = QLabel("", self)  # what the change marks show
        self.caption.setWordWrap(True)
        self.caption.hide()
        self.progress_caption = QLabel("", self)  # a preview, tiles landing
        self.progress_caption.setWordWrap(True)
        self.progress_caption.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.progress_caption)
        layout.addWidget(self.canvas)
        layout.addWidget(self.caption)
        layout.addWidget(self.placeholder)
        self.canvas.hide()
        state.documentChanged.connect(self._on_document)
        for signal in (state.modelChanged, state.resultChanged, state.referenceChanged,
                       state.overlayChanged, state.disagreementChanged,
                       state.changesChanged):
            signal.connect(self.invalidate)
        # the overlay layer's visibility is set here only (the editor's mask replaces it)
        state.overlayChanged.connect(self._show_overlay_layer)
        state.editedMaskChanged.connect(self._show_overlay_layer)
        state.partialChanged.connect(self._on_partial)
        self.canvas.viewChanged.connect(self._note_view)

    def show_message(self, text: str) -> None:
        """Show ``text`` instead of the canvas (e.g. why a file could not be shown)."""
        self.placeholder.setText(text)
        self.canvas.hide()
        self.placeholder.show()

    def _take_focus(self) -> None:
        """Give the keyboard to the canvas when the first image shows (keys for zoom,
        classes and tools then work at once), unless the user is typing somewhere."""
        focus = QApplication.focusWidget()
        if focus is None or not isinstance(focus, (QLineEdit, QAbstractSpinBox, QTextEdit,
                                                   QPlainTextEdit)):
            self.canvas.setFocus(Qt.FocusReason.OtherFocusReason)

    def _on_document(self, doc: object) -> None:
        if doc is not None:
            self.placeholder.setText("")
        self.invalidate()
        if self.isVisible():
            self.refresh_now()

    def _note_view(self) -> None:
        """Tell the document which part of it is in view (a prediction finishes it first)."""
        doc = self.state.document
        if doc is None or self.canvas.isHidden():
            return
        rect = self.canvas.visible_rect()
        if rect is not None and self.canvas.image_size == (doc.width, doc.height):
            x0, y0, x1, y1 = rect
            doc.view_region = (y0, x0, y1, x1)

    def _on_partial(self, model_id: str, boxes: object) -> None:
        """Tiles of the current prediction landed: redraw their regions only."""
        st = self.state
        if model_id != st.model_id or st.prediction() is not None:
            return
        if boxes is None or not self.isVisible() or self._dirty:
            self.invalidate()
            return
        layers = [self.marks_layer]
        if st.overlay_source != REFERENCE:
            layers.append(self.canvas.overlay_layer)
        for top, left, bottom, right in boxes:  # type: ignore[attr-defined]
            rect = QRectF(left, top, right - left, bottom - top)
            for layer in layers:
                if getattr(layer.source, "partial", None) is not None:
                    layer.update_region(rect)
        self._show_progress(st.partial())

    def refresh(self) -> None:
        """Draw the image, the overlay and the marks from the state."""
        st, doc = self.state, self.state.document
        if doc is None:
            self.canvas.set_image(None)
            self.canvas.set_overlay(None)
            self.marks_layer.clear()
            self.pending_layer.set_boxes([])
            self.progress_caption.hide()
            self.caption.hide()
            self.canvas.hide()
            self.placeholder.show()
            return
        self.placeholder.hide()
        if self.canvas.isHidden():
            self.canvas.show()
            self._take_focus()
        self.canvas.set_image(doc_tiles.image(doc))
        self._note_view()
        colors = st.colors()
        if st.overlay_source == REFERENCE:
            overlay = doc_tiles.reference(doc, colors, st.hidden_classes, st.overlay_contours)
        else:
            overlay = doc_tiles.labels(doc, st.model_id, st.overlay_source, colors,
                                       st.hidden_classes, st.overlay_contours)
        self.canvas.set_overlay(overlay, st.mask_opacity)
        self._show_overlay_layer()
        marks = doc_tiles.disagreement(doc, st.model_id) if st.show_disagreement else None
        if st.show_changes:
            marks = self._change_marks(marks)
        self.caption.setVisible(st.show_changes)
        self.marks_layer.set_source(marks)
        self._show_progress(None if st.prediction() is not None else st.partial())

    def _show_progress(self, part: PartialResult | None) -> None:
        """Hatch what is still the preview and say how far the prediction is."""
        if part is None or part.complete:
            self.pending_layer.set_boxes([])
            self.progress_caption.hide()
            return
        self.pending_layer.set_boxes(part.pending_boxes())
        if part.preview is not None:
            ph, pw = part.preview.image_size
            shown = f"Preview (the model on a {pw}×{ph} copy, hatched)"
        else:
            shown = "Not segmented yet (hatched)"
        if part.stopped:
            text = (f"Stopped at {part.fraction:.0%} at full resolution; the rest is the "
                    f"{shown[0].lower() + shown[1:]}. Model > Run segments it all.")
        else:
            text = (f"{shown}: {part.fraction:.0%} at full resolution so far; tiles replace "
                    "it as they land, the part in view first.")
        self.progress_caption.setText(text)
        self.progress_caption.show()

    def _show_overlay_layer(self) -> None:
        """Show the prediction overlay unless it is off or the edited mask replaces it."""
        st = self.state
        self.canvas.overlay_layer.setVisible(st.overlay_visible and not st.edited_shown)

    def _change_marks(self, fallback: object) -> object:
        """The change marks (they replace the disagreement marks) and their caption."""
        st, doc = self.state, self.state.document
        assert doc is not None
        variant = st.overlay_source if st.overlay_source != REFERENCE else "8s"
        parent = st.parent_id()
        share = doc_tiles.change_share(doc, st.model_id, parent, variant)
        if parent is None:
            self.caption.setText("Changes: this model has no previous version (fine-tune it "
                                 "to get one).")
        elif share is None:
            self.caption.setText(
                f"Changes: no FCN-{variant} prediction of this image by the previous version "
                f"({parent[:12]}) to compare with; switch to it (Model > Versions), run it, "
                "then come back.")
        else:
            self.caption.setText(
                f"Changes (cyan): FCN-{variant} changed on {share:.2%} of the pixels "
                f"since the previous version ({parent[:12]}).")
            return doc_tiles.changes(doc, st.model_id, parent, variant)
        return fallback
