"""Compare view: the image, the reference, the disagreement and 32s/16s/8s side by side."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from app import overlays
from app.canvas import ImageCanvas
from app.lazy_view import LazyView
from app.render import ImageBuffer
from app.state import VARIANTS, ViewerState
from app.view_sync import ViewSync

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
        self.title = QLabel(f"<b>{title}</b>", self)
        self.canvas = ImageCanvas(self)
        self.caption = QLabel("", self)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.caption)

    def show_content(
        self, image: ImageBuffer | None, overlay: ImageBuffer | None, opacity: float, caption: str
    ) -> None:
        """Set the canvas layers and the caption."""
        self.canvas.set_image(image)
        self.canvas.set_overlay(overlay, opacity)
        self.caption.setText(caption)


class CompareView(LazyView):
    """Six synchronized panes; zooming or panning one moves all."""

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        """Subscribe to ``state``."""
        super().__init__(parent)
        self.state = state
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
                       state.referenceChanged, state.overlayChanged):
            signal.connect(self.invalidate)

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
        image = doc.display_image()
        colors = st.colors()
        opacity = st.overlay_opacity if st.overlay_visible else 0.0
        stats = overlays.statistics(doc, st.model_id, len(colors)) if colors else None
        per_variant, problem = (stats.variants, stats.problem) if stats else ({}, "")
        pred = doc.prediction(st.model_id)
        self.panes["image"].show_content(image, None, 1.0, f"{doc.title}  {doc.width}×{doc.height}")
        ref = overlays.reference_overlay(doc, colors, st.hidden_classes)
        rp = doc.reference_path
        ref_caption = f"{rp.parent.name}/{rp.name}" if rp else "reference mask"
        self.panes["reference"].show_content(
            image, ref, opacity, ref_caption if doc.reference is not None else "No reference mask"
        )
        if stats is not None:
            caption = f"variants differ on {stats.disagreement:.1%} of the pixels"
        else:
            caption = "no prediction yet"
        self.panes["disagreement"].show_content(
            image, overlays.disagreement_overlay(doc, st.model_id), 0.85, caption
        )
        for variant in VARIANTS:
            s = per_variant.get(variant)
            if s is None:
                caption = "no prediction yet" if pred is None else "not computed"
            elif s.metrics is not None:
                caption = (f"mean IU {s.metrics['mean_iu']:.3f}  ·  pixel acc "
                           f"{s.metrics['pixel_acc']:.3f}")
            else:
                caption = f"confidence {s.mean_confidence:.2f}  ·  entropy {s.mean_entropy:.2f}"
            self.panes[variant].show_content(
                image,
                overlays.label_overlay(doc, st.model_id, variant, colors, st.hidden_classes),
                opacity,
                caption,
            )
        if problem:
            self.panes["reference"].caption.setText(problem)
