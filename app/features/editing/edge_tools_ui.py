"""The edge-aware tools on the viewer canvas: superpixel brush and fill, magic wand, and
polygon snapping (:mod:`core.annotation.edge_tools`).

The superpixels of an image are computed once (per image, size and, on images larger than
:data:`~app.features.editing.correction_engine.SP_MAX_PIXELS`, part in view) in the
correction thread as soon as a superpixel tool is chosen, and drawn as faint white
boundaries while one is the tool. A superpixel brush stroke paints every superpixel it
touches, a superpixel fill the clicked one and its neighbours of like colour (the
tolerance), the wand the pixels within a colour tolerance of the clicked one (contiguous or
everywhere: the dock's *Contiguous region only*), each one undoable, journaled edit. With
*Snap to edges* a closed polygon is snapped in the correction thread, then filled.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRectF, Qt, QTimer
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QFormLayout, QSpinBox, QWidget

from app.features.editing.correction_worker import CorrectionController, CorrectionJob
from app.features.editing.cursor import PathPreviewItem, brush_radius
from app.features.editing.manager import EditingManager
from app.features.editing.preview_ui import Z_SUPERPIXELS, ArgbItem
from app.features.editing.session import EditSession
from app.features.host import WindowHost
from app.services.settings import Settings

SP_TOOLS = ("superpixel", "superfill")
WAND_SYNC_PIXELS = 2_000_000
"""The wand runs on the GUI thread up to this many pixels (about 1 ms at 512², 5 ms at 2 MP);
on larger images in the correction thread."""
MAPS_KEPT = 4
VIEW_SETTLE_MS = 300
SETTINGS = {"wand_tolerance": ("editing/wand_tolerance", 24, int),
            "fill_tolerance": ("editing/superpixel_tolerance", 8.0, float),
            "sp_size": ("editing/superpixel_size", 16, int)}


def visible_box(canvas: Any) -> tuple[int, int, int, int] | None:
    """The image pixels in ``canvas``'s view, ``(x0, y0, x1, y1)``."""
    w, h = canvas.image_size
    if not w or not h:
        return None
    r = canvas.mapToScene(canvas.viewport().rect()).boundingRect().intersected(
        QRectF(0, 0, w, h))
    if r.isEmpty():
        return None
    return (max(0, math.floor(r.left())), max(0, math.floor(r.top())),
            min(w, math.ceil(r.right())), min(h, math.ceil(r.bottom())))


class EdgeTools(QObject):
    """The ``superpixel``, ``superfill`` and ``wand`` tools, and the polygon's snapper.

    Attributes:
        wand_tolerance: The wand's largest per-channel difference (0-255).
        fill_tolerance: The superpixel fill's colour tolerance (CIELAB distance).
        sp_size: The superpixels' typical side (pixels of the image, or of the copy they
            are computed on for a large image seen whole).
        maps: The superpixel maps computed, by image key (the last few).
    """

    def __init__(self, manager: EditingManager, controller: CorrectionController,
                 host: WindowHost, settings: Settings, parent: QObject | None = None) -> None:
        """Become the tools' handler of the edge tools and their snapper."""
        super().__init__(parent)
        self.manager, self.tools, self.state = manager, manager.tools, manager.state
        self.canvas, self.controller, self.host = manager.canvas, controller, host
        self.settings = settings
        for name, (key, default, kind) in SETTINGS.items():
            setattr(self, name, kind(settings.value(key, default, kind)))
        self.maps: OrderedDict[Any, Any] = OrderedDict()
        self.busy = False
        self._stroke: Any | None = None
        self._last: tuple[int, int] | None = None
        self._map: Any | None = None
        self._asked: tuple | None = None
        self._warmed = False
        self.edges = self.canvas.add_layer("superpixels", ArgbItem(), Z_SUPERPIXELS)
        self.edges.hide()
        self.snapping = PathPreviewItem()
        self.canvas.scene().addItem(self.snapping)
        for tool in (*SP_TOOLS, "wand"):
            self.tools.handlers[tool] = self
        self.tools.snapper = self.snap
        self._settle = QTimer(self, singleShot=True, interval=VIEW_SETTLE_MS)
        self._settle.timeout.connect(self.refresh)
        self.canvas.viewChanged.connect(self._settle.start)
        self.tools.toolChanged.connect(lambda _t: self.refresh())
        manager.annotatingChanged.connect(self._on_annotating)
        manager.sessionChanged.connect(lambda _s: self.refresh())
        controller.finished.connect(self._on_finished)
        controller.failed.connect(self._on_failed)
        controller.cancelled.connect(self._on_cancelled)

    # ------------------------------------------------------------------ options
    def set_option(self, name: str, value: float) -> None:
        """Set ``wand_tolerance``, ``fill_tolerance`` or ``sp_size`` (kept in settings)."""
        key, _, kind = SETTINGS[name]
        setattr(self, name, kind(value))
        self.settings.set(key, kind(value))
        if name == "sp_size":
            self.refresh()

    # ------------------------------------------------------------------ superpixels
    def _on_annotating(self, on: bool) -> None:
        """Annotate mode: the correction thread loads the superpixels' libraries the first
        time (see ``correction_engine.warm_up``), while the mask starts."""
        if on and not self._warmed:
            self._warmed = True
            self.controller.submit("warm", None)
        self.refresh()

    def _key(self) -> Any:
        doc = self.state.document
        if doc is None:
            return None
        return doc.path.resolve() if doc.path is not None else id(doc)

    def current_map(self) -> Any | None:
        """The superpixel map of the shown image covering the view, if computed."""
        found = self.maps.get(self._key())
        if found is None or found.size != self.sp_size:
            return None
        return found if self._fits(found) else None

    def _fits(self, found: Any) -> bool:
        from app.features.editing.correction_engine import SP_MAX_PIXELS, superpixel_box

        doc = self.state.document
        if doc is None or doc.width * doc.height <= SP_MAX_PIXELS:
            return found.box == (0, 0, doc.width, doc.height) if doc is not None else False
        view = visible_box(self.canvas)
        if view is None:
            return True
        if not found.covers(view):
            return False
        x0, y0, x1, y1 = superpixel_box((doc.height, doc.width), view)
        wanted = max(1.0, math.sqrt((x1 - x0) * (y1 - y0) / SP_MAX_PIXELS))
        return found.scale <= 1.5 * wanted  # (zoomed in a lot: a finer map)

    def active(self) -> bool:
        """Whether a superpixel tool is in use on an image being annotated."""
        return (self.manager.annotating and self.tools.tool in SP_TOOLS
                and self.state.document is not None and self.manager.session is not None)

    def refresh(self) -> None:
        """Show the shown image's superpixels while a superpixel tool is in use; ask for
        them when they are missing."""
        if not self.active():
            self.edges.hide()
            return
        found = self.current_map()
        if found is None:
            self._ask()
            found = self.maps.get(self._key())  # (the old one meanwhile, if any)
            found = found if found is not None and found.size == self.sp_size else None
        self._show(found)

    def _show(self, found: Any | None) -> None:
        if found is None:
            self.edges.set_array(None)
            self.edges.hide()
            return
        if self.edges.array is not found.edges:
            x0, y0, x1, y1 = found.box
            self.edges.set_array(found.edges, QRectF(x0, y0, x1 - x0, y1 - y0))
        self.edges.show()

    def _ask(self) -> None:
        from app.features.editing.correction_engine import superpixel_box

        doc = self.state.document
        box = superpixel_box((doc.height, doc.width), visible_box(self.canvas))
        wanted = (self._key(), box, self.sp_size)
        if wanted == self._asked:
            return
        self._asked = wanted
        self.controller.cancel(lambda j: j.kind == "superpixels")
        self.controller.submit("superpixels", wanted[0], rgb=doc.image, box=box,
                               size=self.sp_size)
        self.host.show_progress("superpixels", f"Computing superpixels of {doc.title}…")

    def _on_finished(self, job: CorrectionJob, result: Any) -> None:
        if job.kind == "superpixels":
            self._asked = None
            self.host.hide_progress("superpixels")
            found = result.value
            found.thread = result.thread
            self.maps[job.image_key] = found
            self.maps.move_to_end(job.image_key)
            while len(self.maps) > MAPS_KEPT:
                self.maps.popitem(last=False)
            self.refresh()
        elif job.kind in ("wand", "snap"):
            self._apply_later(job, result)

    def _on_failed(self, job: CorrectionJob, message: str) -> None:
        if job.kind in ("superpixels", "wand", "snap"):
            if job.kind == "superpixels":
                self._asked = None
                self.host.hide_progress("superpixels")
            self.snapping.show_points([])
            self.manager.notifications.notify(message, "error")

    def _on_cancelled(self, job: CorrectionJob) -> None:
        if job.kind == "superpixels":
            if self._asked is not None and self._asked[0] == job.image_key:
                self._asked = None
            self.host.hide_progress("superpixels")
        elif job.kind == "snap":
            self.snapping.show_points([])

    # ------------------------------------------------------------------ the handler
    def press(self, session: EditSession, x: int, y: int, event: QMouseEvent) -> bool:
        """A superpixel stroke starts, a superpixel fill or the wand applies."""
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        h, w = session.labels.shape
        if not (0 <= x < w and 0 <= y < h):
            return True
        tool = self.tools.tool
        if tool == "wand":
            self._wand(session, x, y)
            return True
        found = self.current_map()
        if found is None or not found.contains(x, y):
            self.refresh()
            self.host.show_message("The superpixels are being computed: try again in a "
                                   "moment", 3000)
            return True
        if tool == "superfill":
            self.tools.apply(session, found.fill(x, y, self.fill_tolerance), "superpixel fill")
            return True
        self._map = found
        self._stroke = session.image.begin_stroke(self.tools.cls, label="superpixel brush",
                                                  preserve_label=self.tools.preserve)
        self.busy = True
        self._last = (x, y)
        self._paint([(x, y)])
        return True

    def move(self, x: int, y: int, event: QMouseEvent) -> None:
        """Paint the superpixels the stroke's new segment touches."""
        if self._stroke is not None and (x, y) != self._last:
            self._paint([self._last, (x, y)])
            self._last = (x, y)

    def release(self, session: EditSession | None, x: int, y: int, event: QMouseEvent
                ) -> bool:
        """Finish a superpixel stroke: one edit."""
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        if self._stroke is not None:
            if (x, y) != self._last:
                self._paint([self._last, (x, y)])
            stroke, self._stroke, self._last, self.busy = self._stroke, None, None, False
            edit = stroke.finish()
            if session is not None and session.push(edit):
                self.tools.edited.emit()
        return True

    def cancel(self) -> None:
        """Revert a stroke in progress."""
        if self._stroke is not None:
            self._stroke.cancel()
        self._stroke, self._last, self.busy = None, None, False

    def _paint(self, points: list[tuple[int, int]]) -> None:
        region = self._map.brush(points, brush_radius(self.tools.size))
        if region.count:
            self._stroke.add(region)

    # ------------------------------------------------------------------ wand and snap
    def _wand(self, session: EditSession, x: int, y: int) -> None:
        doc = self.state.document
        contiguous = self.tools.fill_contiguous
        name = "magic wand" if contiguous else "magic wand (all)"
        if doc.width * doc.height <= WAND_SYNC_PIXELS:
            from core.annotation.edge_tools import magic_wand

            region = magic_wand(doc.image, (x, y), self.wand_tolerance, contiguous=contiguous)
            self.tools.apply(session, region, name)
            return
        self.controller.submit("wand", self._key(), rgb=doc.image, x=x, y=y,
                               tolerance=self.wand_tolerance, contiguous=contiguous,
                               session=session, value=self.tools.cls, name=name)

    def snap(self, session: EditSession, points: list[tuple[int, int]]) -> bool:
        """The tools' snapper: snap ``points`` in the correction thread, then fill."""
        doc = self.state.document
        if doc is None:
            return False
        self.snapping.show_points(points)
        self.controller.submit("snap", self._key(), rgb=doc.image, points=list(points),
                               session=session, value=self.tools.cls, name="polygon (snapped)")
        return True

    def _apply_later(self, job: CorrectionJob, result: Any) -> None:
        session: EditSession = job.args["session"]
        if job.kind == "snap":
            self.snapping.show_points([])
        if session is not self.manager.session or job.image_key != self._key():
            return  # (another image or mask since)
        region = result.value
        if job.kind == "snap":
            from core.annotation import polygon_fill

            region = polygon_fill(result.value, session.labels.shape)
        self.tools.apply(session, region, job.args["name"], job.args["value"])


class EdgeToolOptions(QWidget):
    """The dock's rows for the edge tools: tolerances, superpixel size, polygon snapping."""

    def __init__(self, edge: EdgeTools, snap_action: Any, parent: QWidget | None = None
                 ) -> None:
        """Controls bound to ``edge``'s options and the Snap to Edges action."""
        super().__init__(parent)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.wand = QSpinBox(self)
        self.wand.setRange(0, 255)
        self.wand.setValue(edge.wand_tolerance)
        self.wand.setToolTip("Magic wand (W): largest difference from the clicked colour, "
                             "per channel (0-255)")
        self.fill = QDoubleSpinBox(self)
        self.fill.setRange(0.0, 100.0)
        self.fill.setDecimals(1)
        self.fill.setValue(edge.fill_tolerance)
        self.fill.setToolTip("Superpixel fill (Shift+S): neighbours whose mean colour is "
                             "this close (CIELAB; 0: the clicked superpixel only)")
        self.size = QSpinBox(self)
        self.size.setRange(4, 128)
        self.size.setSuffix(" px")
        self.size.setValue(edge.sp_size)
        self.size.setToolTip("Typical superpixel side (S, Shift+S)")
        self.snap = QCheckBox("Snap to edges (Shift+P)", self)
        self.snap.setToolTip(snap_action.statusTip())
        self.snap.setChecked(snap_action.isChecked())
        self.snap.toggled.connect(snap_action.setChecked)
        snap_action.toggled.connect(self.snap.setChecked)
        form.addRow("Wand tolerance", self.wand)
        form.addRow("Superpixel fill", self.fill)
        form.addRow("Superpixel size", self.size)
        form.addRow("Polygon", self.snap)
        bind: dict[str, Callable[[float], None]] = {
            n: (lambda v, n=n: edge.set_option(n, v)) for n in SETTINGS}
        self.wand.valueChanged.connect(bind["wand_tolerance"])
        self.fill.valueChanged.connect(bind["fill_tolerance"])
        self.size.valueChanged.connect(bind["sp_size"])

