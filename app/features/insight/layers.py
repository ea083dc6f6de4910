"""The insight feature's layers on the viewer canvas, between the overlay and the marks.

* :class:`MapLayer` (z 12): a map of the analysed copy (a stream term, an uncertainty map,
  an effective field), scaled and placed over the image.
* :class:`BoxesLayer` (z 13 and 13.5): labelled rectangles: the receptive fields of the
  hovered pixel, the chosen "correct next" region or fc window.
* :class:`InsightLayers`: the three on the viewer canvas, showing what the Insight dock's
  tab in front has chosen (a tile's map, a region, a window).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QTransform
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from app.canvas.canvas import ImageCanvas
from app.canvas.layers import Z_MARKS, Z_OVERLAY, ArrayImageItem
from app.common.render import ImageBuffer
from app.features.insight.dock import InsightDock
from app.features.insight.render import STREAM_COLORS, VARIANT_COLORS, uncertainty_image
from app.features.insight.results import RegionInfo
from app.features.insight.uncertainty_tab import SOURCES

Z_MAP = Z_OVERLAY + 2.0
Z_FIELDS = Z_OVERLAY + 3.0
Z_MARKER = Z_OVERLAY + 3.5
assert Z_OVERLAY < Z_MAP < Z_FIELDS < Z_MARKER < Z_MARKS
MARK_COLOR = (255, 255, 255)
VARIANT_STYLES = {"32s": Qt.PenStyle.SolidLine, "16s": Qt.PenStyle.DashLine,
                  "8s": Qt.PenStyle.DotLine}
"""16s and 8s often share a field: their dashes keep both visible on the same edges."""


class MapLayer(ArrayImageItem):
    """An image over the viewer's image: scaled by ``(sx, sy)`` and placed at ``origin``."""

    def __init__(self) -> None:
        """An empty, hidden layer."""
        super().__init__("insight-map")
        self.setOpacity(0.75)
        self.what = ""

    def show_map(self, buffer: ImageBuffer | None, what: str = "",
                 factors: tuple[float, float] = (1.0, 1.0),
                 origin: tuple[float, float] = (0.0, 0.0)) -> None:
        """Show ``buffer`` (None: nothing); ``factors`` = ``(sy, sx)`` image pixels per
        buffer pixel, ``origin`` = ``(x, y)`` of its top-left corner in the image."""
        self.what = what if buffer is not None else ""
        self.setTransform(QTransform.fromScale(factors[1], factors[0]))
        self.setPos(QPointF(*origin))
        self.set_buffer(buffer)
        self.setVisible(buffer is not None)


@dataclass(frozen=True)
class Box:
    """One rectangle: image pixels ``(x0, y0, x1, y1)`` (half-open), color, label and line
    style (rectangles with the same edges stay told apart by their dashes)."""

    rect: tuple[float, float, float, float]
    color: tuple[int, int, int]
    label: str = ""
    dashed: bool = False
    style: Qt.PenStyle = Qt.PenStyle.SolidLine


class BoxesLayer(QGraphicsItem):
    """Labelled rectangles drawn with 2-px lines whatever the zoom, labels inside them."""

    def __init__(self, name: str, labels_below: bool = False) -> None:
        """No boxes yet; ``labels_below``: labels inside the bottom-left corners."""
        super().__init__()
        self.name = name
        self.labels_below = labels_below
        self._boxes: list[Box] = []
        self._point: tuple[int, int] | None = None
        self._bounds = QRectF()

    @property
    def boxes(self) -> list[Box]:
        """The boxes shown."""
        return list(self._boxes)

    def rects(self) -> dict[str, tuple[float, float, float, float]]:
        """``{label: (x0, y0, x1, y1)}`` of the boxes shown."""
        return {b.label: b.rect for b in self._boxes}

    def set_boxes(self, boxes: Sequence[Box], point: tuple[int, int] | None = None) -> None:
        """Show ``boxes`` (and outline pixel ``point`` = ``(x, y)``)."""
        self.prepareGeometryChange()
        self._boxes = list(boxes)
        self._point = point
        bounds = QRectF()
        for b in self._boxes:
            x0, y0, x1, y1 = b.rect
            bounds = bounds.united(QRectF(x0, y0, x1 - x0, y1 - y0))
        if point is not None:
            bounds = bounds.united(QRectF(point[0], point[1], 1, 1))
        pad = 24.0  # the cross around the point is 11 screen px (zoomed out: more pixels)
        self._bounds = bounds.adjusted(-pad, -pad, pad, pad) if not bounds.isNull() else QRectF()
        self.update()

    def clear(self) -> None:
        """Show nothing."""
        self.set_boxes([])

    def boundingRect(self) -> QRectF:
        """Every box (and a margin for the lines)."""
        return self._bounds

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        """Draw the rectangles with cosmetic pens and their labels at screen size."""
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        world = painter.worldTransform()
        font = QFont(painter.font())
        font.setPointSizeF(8.5)
        font.setBold(True)
        corners: dict[tuple[float, float], int] = {}
        for b in self._boxes:
            x0, y0, x1, y1 = b.rect
            dark = QPen(QColor(0, 0, 0, 160), 4)
            dark.setCosmetic(True)
            pen = QPen(QColor(*b.color), 2)
            pen.setCosmetic(True)
            pen.setStyle(Qt.PenStyle.DashLine if b.dashed else b.style)
            rect = QRectF(x0, y0, x1 - x0, y1 - y0)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(dark)
            painter.drawRect(rect)
            painter.setPen(pen)
            painter.drawRect(rect)
            if b.label:  # at screen size, inside the corner; labels of one corner stacked
                key = (x0, y1 if self.labels_below else y0)
                n = corners[key] = corners.get(key, -1) + 1
                corner = world.map(QPointF(*key))
                painter.save()
                painter.resetTransform()
                painter.setFont(font)
                step = -13 if self.labels_below else 13
                at = corner + QPointF(4, (-5 if self.labels_below else 13) + step * n)
                painter.setPen(QColor(0, 0, 0))
                painter.drawText(at + QPointF(1, 1), b.label)
                painter.setPen(QColor(*b.color))
                painter.drawText(at, b.label)
                painter.restore()
        if self._point is not None:  # the pixel, and a cross around it at screen size
            x, y = self._point
            pen = QPen(QColor(255, 255, 255), 1)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.drawRect(QRectF(x, y, 1, 1))
            c = world.map(QPointF(x + 0.5, y + 0.5))
            painter.save()
            painter.resetTransform()
            for color, width in ((QColor(0, 0, 0), 3), (QColor(255, 255, 255), 1)):
                painter.setPen(QPen(color, width))
                for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                    painter.drawLine(c + QPointF(4 * dx, 4 * dy), c + QPointF(11 * dx, 11 * dy))
            painter.restore()


class InsightLayers:
    """The map, fields and marker layers on the viewer canvas, and the marks of each tab.

    Attributes:
        markers: ``{tab: boxes}``: what each tab marks on the viewer (a region, a window).
    """

    def __init__(self, canvas: ImageCanvas, dock: InsightDock) -> None:
        """Add the layers to ``canvas``."""
        self.canvas, self.dock = canvas, dock
        self.map_layer = MapLayer()
        self.fields_layer = BoxesLayer("fields")
        self.marker_layer = BoxesLayer("marker", labels_below=True)
        canvas.add_layer("insight-map", self.map_layer, Z_MAP)
        canvas.add_layer("insight-fields", self.fields_layer, Z_FIELDS)
        canvas.add_layer("insight-marker", self.marker_layer, Z_MARKER)
        self.markers: dict[str, list[Box]] = {}
        self._map_cache: tuple[Any, str, ImageBuffer] | None = None

    def clear(self) -> None:
        """Forget the marks and the rendered map (another image or model)."""
        self.markers = {}
        self._map_cache = None
        self.fields_layer.clear()

    def update(self, tab: str, probe: tuple[int, int] | None) -> str:
        """Show what tab ``tab`` ('' : none) has chosen; return what the map is ('' : none)."""
        buffer, what, factors, origin = None, "", (1.0, 1.0), (0.0, 0.0)
        d = self.dock
        if tab == "streams" and d.streams.result is not None:
            found = d.streams.map_buffer(d.streams.grid.selected() or "")
            if found is not None:
                (buffer, what), factors = found, d.streams.result.scale.factors
        elif tab == "fields" and d.fields.erf is not None:
            found = d.fields.erf_buffer(d.fields.grid.selected() or "")
            if found is not None:
                buffer, what = found
                origin = (float(d.fields.erf.window[0]), float(d.fields.erf.window[1]))
        elif tab == "uncertainty" and d.uncertainty.result is not None and d.uncertainty.overlay_on:
            r, source = d.uncertainty.result, d.uncertainty.source
            cached = self._map_cache
            if cached is None or cached[0] is not r or cached[1] != source:
                cached = self._map_cache = (r, source, uncertainty_image(r.maps[source]))
            buffer, what, factors = cached[2], f"uncertainty: {SOURCES[source]}", r.scale.factors
        self.map_layer.show_map(buffer, what, factors, origin)
        self.marker_layer.set_boxes(self.markers.get(tab, []) if tab else [],
                                    point=probe if tab in ("streams", "fields") else None)
        return what if buffer is not None else ""

    def draw_fields(self, fields: dict[str, Any] | None, hover: tuple[int, int] | None,
                    streams: bool = False) -> None:
        """Rectangles of the theoretical fields (core ``ReceptiveField`` by variant);
        ``streams``: also each stream's field of FCN-8s."""
        if fields is None:
            self.fields_layer.clear()
            return
        boxes = [Box(tuple(f.box), VARIANT_COLORS[v], f"FCN-{v}",  # type: ignore[arg-type]
                     style=VARIANT_STYLES[v]) for v, f in fields.items()]
        if streams and "8s" in fields:
            boxes += [Box(tuple(b), STREAM_COLORS[s], f"8s: {s}",  # type: ignore[arg-type]
                          dashed=True) for s, b in fields["8s"].streams.items()
                      if s != "score_fr"]
        self.fields_layer.set_boxes(boxes, point=hover)

    def go_to_region(self, region: RegionInfo) -> None:
        """Centre and zoom the viewer on a "correct next" region, and mark it."""
        r = self.dock.uncertainty.result
        if r is None:
            return
        x0, y0, x1, y1 = r.scale.box_to_image(*region.box)
        sy, sx = r.scale.factors
        view = self.canvas.viewport().rect()
        span = max(x1 - x0, y1 - y0, 16.0) * 2.0
        self.canvas.set_zoom(min(8.0, max(0.05, min(view.width(), view.height()) / span)))
        self.canvas.centerOn(QPointF((region.center[0] + 0.5) * sx,
                                     (region.center[1] + 0.5) * sy))
        self.canvas.viewChanged.emit()
        regions = r.regions.get(self.dock.uncertainty.source, [])
        rank = next((n for n, g in enumerate(regions, start=1) if g == region), 0)
        self.markers["uncertainty"] = [Box((x0, y0, x1, y1), MARK_COLOR, f"correct next #{rank}")]

    def show_window(self, i: int, j: int) -> None:
        """Mark the image window of the fc map's cell ``(i, j)``."""
        r = self.dock.fc.result
        if r is None:
            return
        s, w = r.stride, r.window
        box = r.scale.box_to_image(s * j, s * i, s * j + w, s * i + w)
        self.markers["fc"] = [Box(box, MARK_COLOR, f"window ({i}, {j}): {w}×{w}")]
