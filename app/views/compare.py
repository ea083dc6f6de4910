"""Compare view: the image, the reference, the disagreement and 32s/16s/8s side by side.

Every pane draws tiles of its zoom's level; the panes share the image's tiles.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QVBoxLayout, QWidget

from app.canvas import doc_tiles
from app.canvas.canvas import ImageCanvas, Shown, show
from app.canvas.layers import Z_MARKS, ArrayImageItem
from app.canvas.panes import disagreement_view, pane_stats
from app.canvas.view_sync import ViewSync
from app.state.display import VARIANTS, ViewerState
from app.state.model_set import ModelSet, pane_sources
from app.views.lazy_view import LazyView
from app.widgets.elided_label import ElidedLabel

PANES: tuple[tuple[str, str], ...] = (
    ("image", "Image"),
    ("reference", "Reference"),
    ("disagreement", "Disagreement"),
    ("32s", "FCN-32s"),
    ("16s", "FCN-16s"),
    ("8s", "FCN-8s"),
)
"""Pane keys and titles, in grid order (three per row)."""


class ComparePane(QWidget):
    """A titled canvas with a one-line caption."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        """An empty pane."""
        super().__init__(parent)
        # one line each, elided (whole text in the tooltip): equal canvas sizes in every pane
        self.title = ElidedLabel(title, bold=True, parent=self)
        self.canvas = ImageCanvas(self)
        self.marks = self.canvas.add_layer("marks", ArrayImageItem("marks"), Z_MARKS)
        self.caption = ElidedLabel("", parent=self)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.caption)

    def set_title(self, text: str, *shorter: str) -> None:
        """Replace the title, e.g. "FCN-16s · fcn16s-heavy-pascal (16s output)".

        ``shorter`` forms are shown, in order, when the pane is too narrow for ``text``.
        """
        self.title.setText(text, *shorter)

    def title_text(self) -> str:
        """The whole title (it is shown elided when the pane is narrow)."""
        return self.title.text()

    def show_content(
        self, image: Shown, overlay: Shown, opacity: float, caption: str, marks: Shown = None,
    ) -> None:
        """Set the canvas layers (``marks``: drawn over the overlay) and the caption."""
        self.canvas.set_image(image)
        self.canvas.set_overlay(overlay, opacity)
        show(self.marks, marks)
        self.caption.setText(caption)


class CompareView(LazyView):
    """Six synchronized panes; zooming or panning one moves all."""

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        """Subscribe to ``state``."""
        super().__init__(parent)
        self.state = state
        self.model_set: ModelSet = state.models.model_set
        self.panes: dict[str, ComparePane] = {}
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(4)
        for i, (key, title) in enumerate(PANES):
            pane = ComparePane(title, self)
            self.panes[key] = pane
            grid.addWidget(pane, i // 3, i % 3)
        self.sync = ViewSync([p.canvas for p in self.panes.values()], self)
        for signal in (state.documentChanged, state.modelChanged, state.resultChanged,
                       state.referenceChanged, state.overlayChanged, state.changesChanged,
                       self.model_set.changed):
            signal.connect(self.invalidate)
        state.predictionChanged.connect(self._on_prediction)

    def _on_prediction(self, model_id: str) -> None:
        """A prediction of the current image arrived: redraw if a pane shows that model."""
        if model_id in {s.model_id for s in pane_sources(self.state, self.model_set).values()}:
            self.invalidate()

    @property
    def canvases(self) -> list[ImageCanvas]:
        """The panes' canvases, in grid order."""
        return [p.canvas for p in self.panes.values()]

    def refresh(self) -> None:
        """Draw every pane from the state."""
        st, doc = self.state, self.state.document
        if doc is None:
            for pane in self.panes.values():
                pane.show_content(None, None, 1.0, "")
            return
        image = doc_tiles.image(doc)
        colors = st.colors()
        opacity = st.mask_opacity if st.overlay_visible else 0.0
        sources = pane_sources(st, self.model_set)
        self.panes["image"].show_content(image, None, 1.0, f"{doc.title}  {doc.width}×{doc.height}")
        ref = doc_tiles.reference(doc, colors, st.hidden_classes, st.overlay_contours)
        rp = doc.reference_path
        ref_caption = f"{rp.parent.name}/{rp.name}" if rp else "reference mask"
        self.panes["reference"].show_content(
            image, ref, opacity, ref_caption if doc.reference is not None else "No reference mask"
        )
        marks, caption = disagreement_view(doc, st, sources)
        self.panes["disagreement"].show_content(image, marks, 0.85, caption)
        problem = ""
        for variant in VARIANTS:
            src = sources[variant]
            self.panes[variant].set_title(src.title, src.short_title)
            s, pane_problem = pane_stats(doc, src)
            problem = problem or pane_problem
            if s is None:
                pred = doc.prediction(src.model_id)
                caption = "no prediction yet" if pred is None else "not computed"
            elif s.metrics is not None:
                caption = (f"mean IU {s.metrics['mean_iu']:.3f}  ·  pixel acc "
                           f"{s.metrics['pixel_acc']:.3f}")
            else:
                caption = f"confidence {s.mean_confidence:.2f}  ·  entropy {s.mean_entropy:.2f}"
            marks = None
            if st.show_changes and not src.from_set:  # what changed since the parent version
                share = doc_tiles.change_share(doc, src.model_id, st.parent_id(), variant)
                if share is not None:
                    marks = doc_tiles.changes(doc, src.model_id, st.parent_id(), variant)
                    caption = f"changed on {share:.2%}  ·  {caption}"
            self.panes[variant].show_content(
                image,
                doc_tiles.labels(doc, src.model_id, variant, src.colors, src.hidden,
                                 st.overlay_contours, landing=False),
                opacity,
                caption,
                marks,
            )
        if problem:
            self.panes["reference"].caption.setText(problem)
