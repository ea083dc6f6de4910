"""ImageCanvas: a QGraphicsView of stacked layers with wheel zoom under the cursor and pan."""

from __future__ import annotations

import time

from PySide6.QtCore import QCoreApplication, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QWheelEvent
from PySide6.QtWidgets import QFrame, QGraphicsItem, QGraphicsScene, QGraphicsView, QWidget

from app.canvas.layers import Z_IMAGE, Z_OVERLAY, ArrayImageItem
from app.canvas.tiles import TileSource
from app.common.render import ImageBuffer

Shown = ImageBuffer | TileSource | None
"""What a layer shows: a tile source, an image buffer, or nothing."""

MIN_ZOOM = 1 / 64
MAX_ZOOM = 64.0
WHEEL_STEP = 1.25


class ImageCanvas(QGraphicsView):
    """Shows an image and the layers above it; one scene unit is one image pixel.

    Wheel: zoom under the cursor. Middle button (or left button while ``left_pans``):
    pan. Layers are added by name with :meth:`add_layer`; ``image`` and ``overlay`` exist.

    Signals:
        viewChanged(): zoom or scroll position changed (for synchronizing views).
        hovered(int, int): image pixel under the cursor, (-1, -1) outside the image.
        zoomChanged(float): the new zoom factor (1.0 = 100%).
    """

    viewChanged = Signal()
    hovered = Signal(int, int)
    zoomChanged = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        """An empty canvas with an image and an overlay layer."""
        super().__init__(parent)
        scene = QGraphicsScene(self)
        # a handful of layers: no BSP index to keep up to date (its deferred updates also
        # left a repaint right after a new source without the item)
        scene.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self.setScene(scene)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setBackgroundBrush(QColor(48, 48, 52))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState, True)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        self.setMouseTracking(True)
        self.left_pans = True
        self.fit_on_resize = True
        self.frame_times: list[float] | None = None
        """When a list, each paint's duration in seconds is appended (benchmarks)."""
        self._pan_from: QPoint | None = None
        self._image_size: tuple[int, int] = (0, 0)
        self._layers: dict[str, QGraphicsItem] = {}
        self.image_layer = self.add_layer("image", ArrayImageItem("image"), Z_IMAGE)
        self.overlay_layer = self.add_layer("overlay", ArrayImageItem("overlay"), Z_OVERLAY)

    # ------------------------------------------------------------------ layers
    def add_layer(self, name: str, item: QGraphicsItem, z: float) -> QGraphicsItem:
        """Add ``item`` to the scene at depth ``z`` under ``name`` (replacing one of that name)."""
        if name in self._layers:
            self.scene().removeItem(self._layers[name])
        item.setZValue(z)
        self.scene().addItem(item)
        self._layers[name] = item
        return item

    def layer(self, name: str) -> QGraphicsItem | None:
        """The layer called ``name``, or None."""
        return self._layers.get(name)

    def set_image(self, image: Shown) -> None:
        """Show a new base image (a tile source or a buffer); the view fits it when its
        size changed."""
        show(self.image_layer, image)
        size = image.size if image is not None else (0, 0)
        if size != self._image_size:
            self._image_size = size
            self.setSceneRect(QRectF(0, 0, *size))
            self.fit()

    def set_overlay(self, overlay: Shown, opacity: float = 1.0) -> None:
        """Show ``overlay`` (a tile source or a buffer; None hides it) at ``opacity``."""
        show(self.overlay_layer, overlay)
        self.overlay_layer.setOpacity(opacity)

    def tiled_layers(self) -> list[ArrayImageItem]:
        """The layers that draw tiles."""
        return [item for item in self._layers.values() if isinstance(item, ArrayImageItem)]

    def settle(self) -> None:
        """Build every visible tile of every layer now and repaint (tests, benchmarks: it
        runs the pending events first, so that the view has its final size)."""
        QCoreApplication.processEvents()
        self.viewport().grab()  # a paint, even where the window is not exposed (offscreen)
        for item in self.tiled_layers():
            item.settle()
        self.viewport().update()

    @property
    def pending(self) -> bool:
        """Whether visible tiles are still being built."""
        return any(item.isVisible() and item.pending for item in self.tiled_layers())

    def visible_rect(self) -> tuple[int, int, int, int] | None:
        """The image pixels in view, ``(x0, y0, x1, y1)`` (None: no image)."""
        w, h = self._image_size
        if not w or not h:
            return None
        r = self.mapToScene(self.viewport().rect()).boundingRect().intersected(
            QRectF(0, 0, w, h))
        if r.isEmpty():
            return None
        return (max(0, int(r.left())), max(0, int(r.top())), min(w, int(r.right()) + 1),
                min(h, int(r.bottom()) + 1))

    @property
    def image_size(self) -> tuple[int, int]:
        """``(width, height)`` of the base image, (0, 0) when empty."""
        return self._image_size

    # ------------------------------------------------------------------ zoom and pan
    @property
    def zoom(self) -> float:
        """Current zoom factor (screen pixels per image pixel)."""
        return float(self.transform().m11())

    def zoom_at(self, factor: float, view_pos: QPointF | QPoint | None = None) -> None:
        """Multiply the zoom by ``factor`` keeping the image point under ``view_pos`` fixed."""
        new = min(MAX_ZOOM, max(MIN_ZOOM, self.zoom * factor))
        if view_pos is None:
            view_pos = QPointF(self.viewport().rect().center())
        view_pos = QPointF(view_pos)
        anchor = self.mapToScene(view_pos.toPoint())
        self.set_zoom(new)
        self.scroll_to(anchor, view_pos)

    def set_zoom(self, zoom: float) -> None:
        """Set an absolute zoom factor, keeping the view's center."""
        zoom = min(MAX_ZOOM, max(MIN_ZOOM, float(zoom)))
        center = self.view_center()
        self.resetTransform()
        self.scale(zoom, zoom)
        self.centerOn(center)
        self.fit_on_resize = False
        self.zoomChanged.emit(zoom)
        self.viewChanged.emit()

    def scroll_to(self, scene_pos: QPointF, view_pos: QPointF) -> None:
        """Scroll so that ``scene_pos`` appears at ``view_pos``."""
        delta = self.mapFromScene(scene_pos) - view_pos.toPoint()
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() + delta.x())
        v.setValue(v.value() + delta.y())

    def view_center(self) -> QPointF:
        """The scene point at the center of the viewport."""
        return self.mapToScene(self.viewport().rect().center())

    def fit(self) -> None:
        """Fit the whole image in the view (and keep fitting when resized)."""
        w, h = self._image_size
        if w and h:
            self.fitInView(QRectF(0, 0, w, h), Qt.AspectRatioMode.KeepAspectRatio)
        self.fit_on_resize = True
        self.zoomChanged.emit(self.zoom)
        self.viewChanged.emit()

    def actual_size(self) -> None:
        """Zoom to 100% (one screen pixel per image pixel)."""
        self.set_zoom(1.0)

    def match(self, other: ImageCanvas) -> None:
        """Take ``other``'s zoom and center (used to synchronize views)."""
        self.fit_on_resize = other.fit_on_resize
        if abs(self.zoom - other.zoom) > 1e-9:
            self.resetTransform()
            self.scale(other.zoom, other.zoom)
        self.centerOn(other.view_center())

    # ------------------------------------------------------------------ events
    def wheelEvent(self, event: QWheelEvent) -> None:
        """Zoom under the cursor."""
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_at(WHEEL_STEP**steps, event.position())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """Start panning with the middle button (or the left one while ``left_pans``)."""
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and self.left_pans
        ):
            self._pan_from = event.position().toPoint()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        """Pan while dragging; report the pixel under the cursor."""
        pos = event.position().toPoint()
        if self._pan_from is not None:
            delta = pos - self._pan_from
            self._pan_from = pos
            h, v = self.horizontalScrollBar(), self.verticalScrollBar()
            h.setValue(h.value() - delta.x())
            v.setValue(v.value() - delta.y())
            self.fit_on_resize = False
        scene = self.mapToScene(pos)
        x, y = int(scene.x() // 1), int(scene.y() // 1)
        w, h_ = self._image_size
        self.hovered.emit(*((x, y) if 0 <= x < w and 0 <= y < h_ else (-1, -1)))
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        """Stop panning."""
        if self._pan_from is not None:
            self._pan_from = None
            self.viewport().unsetCursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event: object) -> None:
        """The cursor left: no pixel is hovered."""
        self.hovered.emit(-1, -1)
        super().leaveEvent(event)

    def resizeEvent(self, event: object) -> None:
        """Keep the image fitted if the user has not zoomed."""
        super().resizeEvent(event)
        if self.fit_on_resize:
            self.fit()

    def paintEvent(self, event: QPaintEvent) -> None:
        """Paint the visible layers (timed into :attr:`frame_times` when it is a list)."""
        if self.frame_times is None:
            super().paintEvent(event)
            return
        start = time.perf_counter()
        super().paintEvent(event)
        self.frame_times.append(time.perf_counter() - start)

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        """Report scrolling."""
        super().scrollContentsBy(dx, dy)
        self.viewChanged.emit()


def show(layer: ArrayImageItem, shown: Shown) -> None:
    """Put a tile source or a buffer (or nothing) on ``layer``."""
    if shown is None or isinstance(shown, TileSource):
        layer.set_source(shown)
    else:
        layer.set_buffer(shown)
