"""Export commands: pick a file (or take one), render, write, and report."""

from __future__ import annotations

import os
from collections.abc import Set as AbstractSet
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QFileDialog, QWidget

from app.canvas.overlays import DISAGREE_COLOR
from app.canvas.panes import mixed, set_disagreement
from app.common.render import contour_labels, contour_thickness
from app.features.export import images as export
from app.features.host import AppContext, WindowHost
from app.services.settings import Settings
from app.state.display import REFERENCE, VARIANTS, ViewerState
from app.state.model_set import ModelSet, pane_sources
from app.state.notifications import NotificationCenter
from core.outputs import render
from core.outputs.colormaps import DEFAULT_COLORMAP, ENTROPY_COLORMAP


class Exporter:
    """Writes what the views show as PNG files; failures become notifications."""

    def __init__(
        self, parent: QWidget, state: ViewerState, notes: NotificationCenter, settings: Settings
    ) -> None:
        """Export from ``state``; ask for file names with dialogs parented to ``parent``."""
        self.parent, self.state, self.notes, self.settings = parent, state, notes, settings
        # the compare grid follows the compare view's model set
        self.model_set: ModelSet = state.models.model_set

    def _variant(self) -> str:
        source = self.state.overlay_source
        return source if source in VARIANTS else "8s"

    def _target(self, path: str | os.PathLike[str] | None, what: str, suffix: str) -> Path | None:
        if path is not None:
            return Path(path)
        doc = self.state.document
        stem = doc.path.stem if doc is not None and doc.path else "image"
        folder = self.settings.last_dir
        chosen, _ = QFileDialog.getSaveFileName(
            self.parent, f"Export {what}", str(Path(folder) / f"{stem}_{suffix}.png"),
            "PNG images (*.png)",
        )
        if not chosen:
            return None
        self.settings.last_dir = str(Path(chosen).parent)
        return Path(chosen)

    def _ready(self, what: str) -> bool:
        if self.state.document is None or self.state.prediction() is None:
            self.notes.notify(f"Nothing to export as {what}: segment an image first", "warning")
            return False
        return True

    def _write(self, target: Path | None, write: object, what: str) -> Path | None:
        if target is None:
            return None
        try:
            write(target)  # type: ignore[operator]
        except Exception as exc:  # a failed export must never take the app down
            self.notes.notify(f"Could not export the {what} to {target}: {exc}", "error")
            return None
        self.notes.notify(f"Exported the {what} to {target}")
        return target

    def mask(self, path: str | os.PathLike[str] | None = None) -> Path | None:
        """The overlay variant's mask as a palette PNG (class colors as the palette)."""
        if not self._ready("a mask"):
            return None
        variant = self._variant()
        labels = self.state.output(variant).labels
        colors = self.state.colors()
        target = self._target(path, "Mask", f"{variant}_mask")
        return self._write(target, lambda t: export.save_mask(t, labels, colors), "mask")

    def overlay(self, path: str | os.PathLike[str] | None = None) -> Path | None:
        """The image with the overlay as shown (source and opacity)."""
        doc = self.state.document
        if doc is None:
            return None
        st = self.state
        if st.overlay_source == REFERENCE:
            labels = doc.reference
        elif self._ready("an overlay"):
            labels = st.output(self._variant()).labels
        else:
            return None
        if labels is None:
            self.notes.notify("This image has no reference mask to export", "warning")
            return None
        rgb = self._blend(doc.image, labels, st.colors(), st.hidden_classes)
        target = self._target(path, "Overlay", f"{st.overlay_source}_overlay")
        return self._write(target, lambda t: export.save_rgb(t, rgb), "overlay")

    def _blend(self, image: np.ndarray, labels: np.ndarray, colors: object,
               hidden: AbstractSet[int]) -> np.ndarray:
        """``labels`` over ``image`` as the panes show them: filled, or as contours."""
        st = self.state
        if st.overlay_contours:
            labels = contour_labels(labels, contour_thickness(*labels.shape[:2]))
        return render.overlay(image, labels, colors, st.mask_opacity, hidden)

    def heatmap(self, path: str | os.PathLike[str] | None = None) -> Path | None:
        """The heatmap as shown (class probability or entropy; over the image or alone)."""
        if not self._ready("a heatmap"):
            return None
        st, doc = self.state, self.state.document
        out = st.output(st.heatmap_variant)
        if st.heatmap_source == "entropy":
            values, cmap, name = out.entropy(), ENTROPY_COLORMAP, "entropy"
        else:
            values, cmap = out.probability(st.heatmap_class), DEFAULT_COLORMAP
            name = st.class_names()[st.heatmap_class]
        under = doc.image if st.heatmap_mode == "overlay" else None
        rgb = render.heatmap(values, cmap, under, max(st.overlay_opacity, 0.35))
        target = self._target(path, "Heatmap", f"{st.heatmap_variant}_{name}_heatmap")
        return self._write(target, lambda t: export.save_rgb(t, rgb), "heatmap")

    def grid(self, path: str | os.PathLike[str] | None = None) -> Path | None:
        """Image, reference, disagreement and the three variants in a titled grid."""
        if not self._ready("a compare grid"):
            return None
        st, doc = self.state, self.state.document
        pred, colors = st.prediction(), st.colors()
        hidden = st.hidden_classes
        ref = None
        if doc.reference is not None:
            ref = self._blend(doc.image, doc.reference, colors, hidden)
        sources = pane_sources(st, self.model_set)
        several = mixed(sources)
        differ = set_disagreement(doc, sources) if several else pred.disagreement()
        tiles: list[tuple[str, np.ndarray | None]] = [
            (doc.title, doc.image),
            ("Reference", ref),
            ("Disagreement", None if differ is None else
             render.mark(doc.image, differ, DISAGREE_COLOR, 0.85)),
        ]
        for v, src in sources.items():
            out = doc.output(src.model_id, v)
            tiles.append((src.title if several else f"FCN-{v}", None if out is None else
                          self._blend(doc.image, out.labels, src.colors, src.hidden)))
        rgb = export.compare_grid(tiles)
        target = self._target(path, "Compare Grid", "compare")
        return self._write(target, lambda t: export.save_rgb(t, rgb), "compare grid")


def install_export(context: AppContext, host: WindowHost) -> Exporter:
    """Connect File > Export's four commands to an :class:`Exporter`."""
    exporter = Exporter(host.widget(), context.state, context.notifications, context.settings)
    host.action("export_mask").triggered.connect(lambda: exporter.mask())
    host.action("export_overlay").triggered.connect(lambda: exporter.overlay())
    host.action("export_heatmap").triggered.connect(lambda: exporter.heatmap())
    host.action("export_grid").triggered.connect(lambda: exporter.grid())
    return exporter
