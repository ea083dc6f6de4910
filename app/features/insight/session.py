"""InsightSession: follows the current image and model, asks the worker for what the Insight
dock's tab in front shows, and puts the results in the dock and on the viewer canvas.

Nothing heavy runs here: the jobs run in the insight thread (:mod:`.controller`); what comes
back is kept per image, model id and parameters (:class:`~.cache.ByteLRU`), so going back
to an image, a class or a source shows at once. The only core call on the GUI thread is the
theoretical receptive field of the hovered pixel: layer arithmetic on a weightless model
(about 3 ms), at most once per event-loop turn.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QDockWidget

from app.features.host import AppContext, WindowHost
from app.features.insight.cache import ByteLRU, deep_nbytes
from app.features.insight.canvas_input import CanvasInput
from app.features.insight.controller import InsightController
from app.features.insight.dock import InsightDock
from app.features.insight.layers import MARK_COLOR, Box, InsightLayers
from app.features.insight.results import (
    InsightJob,
    RegionInfo,
    Scale,
    Target,
    analysis_size,
)
from app.features.insight.worker import TITLES

PROGRESS_KEY = "insight"
RESULT_BUDGET = 512 << 20
"""Bytes of results kept for going back to an image or a class."""


def image_key(doc: Any) -> str:
    """The key of a document's image: its resolved path (or a name for an unsaved one)."""
    path = getattr(doc, "path", None)
    return str(path.resolve()) if path is not None else f"untitled:{id(doc)}"


class InsightSession(QObject):
    """The insight feature's logic between the app's state, the worker and the views.

    Signals:
        shown(str, object): a result was put in the dock (its kind and the result).
    """

    shown = Signal(str, object)

    def __init__(self, context: AppContext, host: WindowHost, dock: InsightDock,
                 qdock: QDockWidget, parent: QObject | None = None) -> None:
        """Add the canvas layers and follow the state, the dock and the canvas."""
        super().__init__(parent)
        self.context, self.host, self.dock, self.qdock = context, host, dock, qdock
        self.controller = InsightController(self)
        self.layers = InsightLayers(context.viewer_canvas, dock)
        self.input = CanvasInput(context.viewer_canvas, self)
        self.results: ByteLRU[tuple, Any] = ByteLRU(RESULT_BUDGET, deep_nbytes)
        self.geometry: dict[str, Any] = {}
        self.scores: dict[tuple[str, str], dict[str, float]] = {}
        self.target: Target | None = None
        self.probe: tuple[int, int] | None = None
        self._cancelled: set[tuple] = set()
        st, d = context.state, dock
        st.documentChanged.connect(self._on_document)
        context.models.changed.connect(self._on_model)
        context.inference.controller.busyChanged.connect(
            lambda busy: None if busy else self.refresh())
        self._shown = qdock.isVisible() and not qdock.visibleRegion().isEmpty()
        qdock.visibilityChanged.connect(self._on_visibility)
        d.tabs.currentChanged.connect(self._on_tab)
        d.streams.classChosen.connect(self._on_class)
        d.streams.mapChosen.connect(lambda _k: self.update_layers())
        d.fields.hoverToggled.connect(lambda _on: self._draw_fields())
        d.fields.streams_box.toggled.connect(lambda _on: self._draw_fields())
        d.fields.erfRequested.connect(self.request_erf)
        d.fields.mapChosen.connect(lambda _k: self.update_layers())
        d.fc.windowChosen.connect(self._show_window)
        d.uncertainty.sourceChosen.connect(lambda _s: self.update_layers())
        d.uncertainty.overlayToggled.connect(lambda _on: self.update_layers())
        d.uncertainty.regionChosen.connect(self.go_to_region)
        self.input.clicked.connect(self._on_click)
        self.input.hovered.connect(lambda _x, _y: self._draw_fields())
        c = self.controller
        c.started.connect(self._on_started)
        c.progress.connect(self._on_progress)
        c.resultReady.connect(self._on_result)
        c.failed.connect(self._on_failed)
        c.busyChanged.connect(self._on_busy)
        self._on_model(None)

    # ------------------------------------------------------------------ state
    @property
    def active(self) -> bool:
        """Whether the dock is on screen (its jobs run only then). A dock tabbed behind
        another stays ``isVisible()``: its visibility signal tells."""
        return self._shown and self.qdock.isVisible()

    def _on_tab(self, _index: int) -> None:
        self._cancelled.clear()  # another tab is a new request
        self.refresh()

    def _on_visibility(self, on: bool) -> None:
        self._shown = bool(on)
        self.refresh()

    def target_for(self, doc: Any) -> Target | None:
        """The target of a document with the current model (None without either)."""
        loaded = self.context.models.loaded
        if doc is None or loaded is None:
            return None
        return Target(image_key(doc), loaded.model_id, loaded.path, loaded.device or "cpu",
                      doc.image, doc.path, doc.title)

    def scale(self) -> Scale | None:
        """The current image's analysed copy."""
        doc = self.context.state.document
        if doc is None:
            return None
        size = (doc.height, doc.width)
        return Scale(analysis_size(*size), size)

    def cached(self, kind: str, *extra: Any) -> Any:
        """A result of the current target kept in the cache, or None."""
        t = self.target
        return None if t is None else self.results.get((kind, t.image_key, t.model_id, *extra))

    def _on_document(self, doc: Any) -> None:
        self.target = self.target_for(doc)
        key = self.target.image_key if self.target is not None else None
        # jobs of the previous image are of no use now (the ranking's scores are)
        self.controller.cancel(lambda j: j.kind != "score" and j.target.image_key != key)
        self._cancelled.clear()
        self.probe = None
        self._clear_views("")
        self.refresh()

    def _on_model(self, _loaded: Any) -> None:
        model_id = self.context.models.model_id
        self.controller.cancel(lambda j: j.target.model_id != model_id)
        self.target = self.target_for(self.context.state.document)
        names, colors = self.context.models.class_names(), self.context.models.colors()
        self.dock.streams.set_classes(names, colors)
        self.dock.uncertainty.set_classes(names)
        self._cancelled.clear()
        self._clear_views("")
        self.refresh()

    def _clear_views(self, text: str) -> None:
        d = self.dock
        d.streams.clear(text)
        d.fc.clear(text)
        d.uncertainty.clear(text)
        d.fields.clear_erf()
        d.fields.show_fields(None)
        self.layers.clear()
        self.update_layers()
        if self.target is None:
            d.status.setText("Open an image and load a model." if
                             self.context.models.loaded is None or
                             self.context.state.document is None else "")
        else:
            d.status.setText(f"{self.target.title}")

    # ------------------------------------------------------------------ asking for work
    def refresh(self) -> None:
        """Show what the tab in front needs, asking the worker for what is missing."""
        t = self.target
        if t is not None and self.active:
            if t.model_id not in self.geometry:
                self.controller.submit("geometry", t)
            tab = self.dock.current
            if tab == "streams":
                self._want_streams(t)
            elif tab == "fc":
                self._want("fc_conv", t)
            elif tab == "uncertainty":
                self._want("uncertainty", t)
        self.update_layers()
        self._draw_fields()

    def _allowed(self, key: tuple) -> bool:
        """Automatic requests wait for the prediction and skip what the user cancelled."""
        return key not in self._cancelled and not self.context.inference.controller.busy

    def _want(self, kind: str, t: Target) -> None:
        found = self.cached(kind)
        if found is not None:
            self._display(kind, found)
        elif self._allowed((kind, t.image_key, t.model_id)):
            self.controller.submit(kind, t)

    def _want_streams(self, t: Target) -> None:
        cls = self.dock.streams.cls
        found = self.cached("streams")
        if found is not None:
            if self.dock.streams.result is not found:
                self._display("streams", found)
            maps = self.cached("class_maps", cls)
            if maps is None:
                self.controller.submit("class_maps", t, (("cls", cls),))
            elif self.dock.streams.maps is not maps:
                self._display("class_maps", maps)
        elif self._allowed(("streams", t.image_key, t.model_id)):
            self.controller.submit("streams", t, (("cls", cls),))

    def _on_class(self, _cls: int) -> None:
        if self.target is not None:
            self._want_streams(self.target)

    def request_pixel(self, x: int, y: int) -> InsightJob | None:
        """Split every class's logit at image pixel ``(x, y)`` by stream."""
        t, scale = self.target, self.scale()
        if t is None or scale is None:
            return None
        ay, ax = scale.to_analysis(y, x)
        found = self.cached("pixel", ay, ax)
        if found is not None:
            self._display("pixel", found)
            return None
        return self.controller.submit("pixel", t, (("y", ay), ("x", ax)))

    def request_erf(self, at: tuple[int, int] | None = None) -> InsightJob | None:
        """The effective fields at image pixel ``at`` = ``(x, y)`` (default: the last click,
        else the hovered pixel); brings the Receptive fields tab forward."""
        t = self.target
        at = at or self.probe or self.input.last_hover
        if t is None:
            return None
        if at is None:
            self.dock.fields.clear_erf("Click a pixel of the viewer first.")
            return None
        self.probe = at
        if not self.active:
            self.qdock.show()
            self.qdock.raise_()
        self.dock.show_tab("fields")
        x, y = at
        found = self.cached("erf", y, x)
        if found is not None:
            self._display("erf", found)
            return None
        self.dock.fields.erf_label.setText(f"Computing the effective fields of ({x}, {y})…")
        return self.controller.submit("erf", t, (("y", y), ("x", x)))

    def cancel_work(self) -> None:
        """Cancel the current image's jobs (the automatic ones wait for a new request)."""
        for job in self.controller.pending():
            if job.kind != "score":
                self._cancelled.add((job.kind, job.target.image_key, job.target.model_id))
        self.controller.cancel(lambda j: j.kind != "score")
        self.dock.status.setText("Cancelled: switch tabs or images, or click a pixel, to "
                                 "compute again.")

    # ------------------------------------------------------------------ results
    def _store(self, job: InsightJob, result: Any) -> None:
        t, p = job.target, job.param
        base = (t.image_key, t.model_id)
        kind = job.kind
        if kind == "streams":
            self.results.put(("streams", *base), result)
            self.results.put(("class_maps", *base, result.maps.cls), result.maps)
        elif kind == "class_maps":
            self.results.put(("class_maps", *base, result.cls), result)
        elif kind in ("pixel", "erf"):
            self.results.put((kind, *base, p("y"), p("x")), result)
        elif kind in ("uncertainty", "fc_conv"):
            self.results.put((kind, *base), result)
        if kind == "uncertainty":
            self.scores[base] = dict(result.scores)
        elif kind == "score":
            self.scores[base] = dict(result.scores)
            if result.uncertainty is not None:
                self.results.put(("uncertainty", *base), result.uncertainty)

    def _on_result(self, job: InsightJob, result: Any) -> None:
        if job.kind == "geometry":
            self.geometry[job.target.model_id] = result.model
            self._draw_fields()
            return
        self._store(job, result)
        t = self.target
        if t is None or (job.target.image_key, job.target.model_id) != (t.image_key,
                                                                        t.model_id):
            return
        if job.kind == "score":
            return
        self._display(job.kind, result)
        if job.kind == "streams" and result.maps.cls != self.dock.streams.cls:
            self._want_streams(t)  # the class changed while it ran

    def _display(self, kind: str, result: Any) -> None:
        d = self.dock
        if kind == "streams":
            d.streams.show_streams(result)
        elif kind == "class_maps":
            if result.cls == d.streams.cls:
                d.streams.show_maps(result)
        elif kind == "pixel":
            scale, probe = self.scale(), self.probe
            at = probe if probe is not None and scale is not None and scale.to_analysis(
                probe[1], probe[0]) == (result.y, result.x) else None
            d.streams.show_pixel(result, at)
        elif kind == "uncertainty":
            d.uncertainty.show_result(result)
        elif kind == "fc_conv":
            d.fc.show_result(result, self.context.models.class_names(),
                             self.context.models.colors())
        elif kind == "erf":
            d.fields.show_erf(result)
            self.layers.markers["fields"] = [Box(result.window, MARK_COLOR,
                                                 "effective fields' crop", dashed=True)]
        self.update_layers()
        self.shown.emit(kind, result)

    def _on_failed(self, job: InsightJob, message: str) -> None:
        if job.kind != "score":
            self.context.notifications.notify(message, "error")
            self.dock.status.setText(message)

    # ------------------------------------------------------------------ progress
    def _on_started(self, job: InsightJob) -> None:
        if job.kind in ("score", "geometry"):
            return
        text = f"Insight: {TITLES[job.kind]}…"
        self.host.show_progress(PROGRESS_KEY, text, -1.0, cancel=self.cancel_work)
        self.dock.status.setText(f"{job.target.title}: {TITLES[job.kind].lower()}…")

    def _on_progress(self, job: InsightJob, fraction: float, text: str) -> None:
        if job.kind in ("score", "geometry"):
            return
        self.host.show_progress(PROGRESS_KEY, f"Insight: {TITLES[job.kind]}: {text}",
                                fraction, cancel=self.cancel_work)

    def _on_busy(self, busy: bool) -> None:
        if busy or any(j.kind not in ("score", "geometry") for j in self.controller.pending()):
            return
        self.host.hide_progress(PROGRESS_KEY)
        if self.target is not None and not self.dock.status.text().startswith("Cancelled"):
            self.dock.status.setText(self.target.title)
            self.update_layers()

    # ------------------------------------------------------------------ the canvas
    def _on_click(self, x: int, y: int) -> None:
        if not self.active or self.target is None:
            return
        self.probe = (x, y)
        tab = self.dock.current
        if tab == "streams":
            self._cancelled.discard(("streams", self.target.image_key, self.target.model_id))
            self.request_pixel(x, y)
        elif tab == "fields":
            self.dock.fields.erf_label.setText(
                f"Pixel ({x}, {y}) chosen: ask for its effective fields.")
        self.layers.marker_layer.set_boxes(self.layers.markers.get(tab, []), point=(x, y))

    def fields_at(self, x: int, y: int) -> dict[str, Any] | None:
        """The theoretical receptive fields of image pixel ``(x, y)`` (None: no geometry)."""
        doc, t = self.context.state.document, self.target
        geometry = self.geometry.get(t.model_id) if t is not None else None
        if doc is None or geometry is None:
            return None
        from core.insight.receptive import receptive_fields  # loaded by the worker already

        return receptive_fields(geometry, y, x, (doc.height, doc.width))

    def _draw_fields(self) -> None:
        hover = self.input.last_hover
        on = self.active and self.dock.current == "fields" and self.dock.fields.hover_on
        fields = self.fields_at(*hover) if on and hover is not None else None
        self.layers.draw_fields(fields, hover, self.dock.fields.streams_on)
        if fields is None:
            note = "" if self.target is None or self.target.model_id in self.geometry else (
                "reading the model's layers…")
            self.dock.fields.show_fields(None, note=note)
        else:
            self.dock.fields.show_fields(fields, hover)

    def update_layers(self) -> None:
        """Put the tab in front's chosen map and marks on the viewer (nothing when hidden)."""
        tab = self.dock.current if self.active and self.target is not None else ""
        what = self.layers.update(tab, self.probe)
        if self.target is not None and not self.controller.busy:
            on = f" · on the viewer: {what}" if what else ""
            if not self.dock.status.text().startswith("Cancelled"):
                self.dock.status.setText(f"{self.target.title}{on}")

    def go_to_region(self, region: RegionInfo) -> None:
        """Centre and zoom the viewer on a "correct next" region, and outline it."""
        self.layers.go_to_region(region)
        self.update_layers()

    def _show_window(self, i: int, j: int) -> None:
        self.layers.show_window(i, j)
        self.update_layers()

    def shutdown(self) -> None:
        """Stop the worker thread."""
        self.host.hide_progress(PROGRESS_KEY)
        self.controller.shutdown()
