"""The main viewer: one canvas with the image, a mask overlay and optional disagreement marks."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.canvas import overlays
from app.canvas.canvas import ImageCanvas
from app.canvas.layers import Z_MARKS, ArrayImageItem
from app.state.display import REFERENCE, ViewerState
from app.views.lazy_view import LazyView


class ViewerView(LazyView):
    """Shows the current document with the chosen overlay (a variant or the reference)."""

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        """Subscribe to ``state``."""
        super().__init__(parent)
        self.state = state
        self.canvas = ImageCanvas(self)
        self.marks_layer = self.canvas.add_layer("marks", ArrayImageItem("marks"), Z_MARKS)
        self.placeholder = QLabel(
            "Open images or a folder (File > Open, or drop them here)", self
        )
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.caption = QLabel("", self)  # what the change marks show
        self.caption.setWordWrap(True)
        self.caption.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
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

    def show_message(self, text: str) -> None:
        """Show ``text`` instead of the canvas (e.g. why a file could not be shown)."""
        self.placeholder.setText(text)
        self.canvas.hide()
        self.placeholder.show()

    def _on_document(self, doc: object) -> None:
        if doc is not None:
            self.placeholder.setText("")
        self.invalidate()
        if self.isVisible():
            self.refresh_now()

    def refresh(self) -> None:
        """Draw the image, the overlay and the marks from the state."""
        st, doc = self.state, self.state.document
        if doc is None:
            self.canvas.set_image(None)
            self.canvas.set_overlay(None)
            self.marks_layer.clear()
            self.caption.hide()
            self.canvas.hide()
            self.placeholder.show()
            return
        self.placeholder.hide()
        self.canvas.show()
        self.canvas.set_image(doc.display_image())
        colors = st.colors()
        if st.overlay_source == REFERENCE:
            overlay = overlays.reference_overlay(doc, colors, st.hidden_classes,
                                                 st.overlay_contours)
        else:
            overlay = overlays.label_overlay(
                doc, st.model_id, st.overlay_source, colors, st.hidden_classes,
                st.overlay_contours,
            )
        self.canvas.set_overlay(overlay, st.mask_opacity)
        self._show_overlay_layer()
        marks = overlays.disagreement_overlay(doc, st.model_id) if st.show_disagreement else None
        if st.show_changes:
            marks = self._change_marks(marks)
        self.caption.setVisible(st.show_changes)
        self.marks_layer.set_buffer(marks)

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
        changed = overlays.changed_pixels(doc, st.model_id, parent, variant)
        if parent is None:
            self.caption.setText("Changes: this model has no previous version (fine-tune it "
                                 "to get one).")
        elif changed is None:
            self.caption.setText(
                f"Changes: no FCN-{variant} prediction of this image by the previous version "
                f"({parent[:12]}) to compare with; switch to it (Model > Versions), run it, "
                "then come back.")
        else:
            self.caption.setText(
                f"Changes (cyan): FCN-{variant} changed on {changed.mean():.2%} of the pixels "
                f"since the previous version ({parent[:12]}).")
            return overlays.change_overlay(doc, st.model_id, parent, variant)
        return fallback
