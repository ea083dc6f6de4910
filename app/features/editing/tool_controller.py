"""ToolController: turns mouse, wheel and key events on a canvas into mask edits.

Tools: brush and eraser (round, interpolated between mouse events by the core's capsule
footprint, so fast moves leave no gaps), flood fill, polygon (click vertices; double-click,
right-click or Enter closes; Backspace removes the last; Esc cancels), lasso (drag) and
eyedropper. Points snap to pixel centres, so a click paints exactly the footprint the
brush cursor shows. Keys on the canvas: ``[`` / ``]`` brush size, digits pick a class;
Ctrl+wheel changes the size (plain wheel still zooms, middle button still pans).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QPointF, Qt, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent, QWheelEvent

from app.canvas.canvas import ImageCanvas
from app.features.editing.cursor import BrushCursorItem, PathPreviewItem, brush_radius
from app.features.editing.session import EditSession

TOOLS: dict[str, str] = {
    "brush": "Brush", "eraser": "Eraser", "fill": "Fill", "polygon": "Polygon",
    "lasso": "Lasso", "eyedropper": "Eyedropper",
}
"""Tool ids and their names."""
MIN_SIZE, MAX_SIZE = 1, 255
VOID = 255
E = QEvent.Type
_POLY_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape, Qt.Key.Key_Backspace)


def next_size(size: int, up: bool) -> int:
    """The brush size after one ``]`` (``up``) or ``[``: steps of 1 below 10, else ~15%."""
    step = 1 if size < 10 else max(1, round(size * 0.15))
    return max(MIN_SIZE, min(MAX_SIZE, size + (step if up else -step)))


class ToolController(QObject):
    """Applies the current tool to the current :class:`EditSession` on one canvas.

    Signals:
        toolChanged(str), classChanged(int), sizeChanged(int), eraserChanged(int),
        preserveChanged(object), fillModeChanged(bool): a setting changed (preserve: a
            class or None; fill mode: contiguous region only).
        edited(): an edit was pushed on the session's undo stack.
        message(str, str): level and text for the user.
    """

    toolChanged = Signal(str)
    classChanged = Signal(int)
    sizeChanged = Signal(int)
    eraserChanged = Signal(int)
    preserveChanged = Signal(object)
    fillModeChanged = Signal(bool)
    edited = Signal()
    message = Signal(str, str)

    def __init__(
        self,
        canvas: ImageCanvas,
        session: Callable[[], EditSession | None],
        parent: QObject | None = None,
    ) -> None:
        """Watch ``canvas``; ``session()`` gives the session to edit (None: nothing)."""
        super().__init__(parent)
        self.canvas = canvas
        self._session = session
        self.enabled = False
        self.tool = "brush"
        self.cls = 1
        self.size = 9
        self.eraser_value = 0
        self.preserve: int | None = None
        self.fill_contiguous = True
        self.num_classes = 0
        self._previous_tool = "brush"
        self._stroke: object | None = None
        self._last: tuple[int, int] | None = None
        self._points: list[tuple[int, int]] = []
        self._dragging_lasso = False
        self.cursor = BrushCursorItem()
        self.preview = PathPreviewItem()
        self.cursor.set_size(self.size)
        canvas.scene().addItem(self.cursor)
        canvas.scene().addItem(self.preview)
        canvas.viewport().installEventFilter(self)
        canvas.installEventFilter(self)

    # ------------------------------------------------------------------ settings
    def set_enabled(self, on: bool) -> None:
        """Let the tools have the left button (True) or give it back to panning."""
        self.cancel_pending()
        self.enabled = bool(on)
        self.canvas.left_pans = not self.enabled
        self._update_cursor()
        if not self.enabled:
            self.cursor.hide()

    def set_tool(self, tool: str) -> None:
        """Choose a tool (a key of :data:`TOOLS`)."""
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}")
        if tool == self.tool:
            return
        self.cancel_pending()
        if self.tool != "eyedropper":
            self._previous_tool = self.tool
        self.tool = tool
        self._update_cursor()
        self.toolChanged.emit(tool)

    def set_class(self, cls: int) -> None:
        """Paint with class ``cls``."""
        cls = int(cls)
        if self.num_classes and not 0 <= cls < self.num_classes:
            return
        if cls != self.cls:
            self.cls = cls
            self.classChanged.emit(cls)

    def set_size(self, size: int) -> None:
        """Brush and eraser diameter in pixels."""
        size = max(MIN_SIZE, min(MAX_SIZE, int(size)))
        if size != self.size:
            self.size = size
            self.cursor.set_size(size)
            self.sizeChanged.emit(size)

    def set_eraser_value(self, value: int) -> None:
        """What the eraser paints: 0 (background) or 255 (void)."""
        value = VOID if int(value) == VOID else 0
        if value != self.eraser_value:
            self.eraser_value = value
            self.eraserChanged.emit(value)

    def set_preserve(self, cls: int | None) -> None:
        """Paint only over pixels of class ``cls`` (None: over everything)."""
        cls = None if cls is None or int(cls) < 0 else int(cls)
        if cls != self.preserve:
            self.preserve = cls
            self.preserveChanged.emit(cls)

    def set_fill_contiguous(self, on: bool) -> None:
        """Fill the clicked region only (True) or every pixel of the clicked label (False)."""
        on = bool(on)
        if on != self.fill_contiguous:
            self.fill_contiguous = on
            self.fillModeChanged.emit(on)

    def set_num_classes(self, n: int) -> None:
        """The model's class count (digits and the class choice are checked against it)."""
        self.num_classes = int(n)
        if n and self.cls >= n:
            self.set_class(1 if n > 1 else 0)

    @property
    def busy(self) -> bool:
        """Whether a stroke, polygon or lasso is in progress."""
        return self._stroke is not None or bool(self._points)

    def cancel_pending(self) -> None:
        """Abandon a stroke (reverting it), a polygon or a lasso in progress."""
        if self._stroke is not None:
            self._stroke.cancel()
            self._stroke = None
        self._points = []
        self._dragging_lasso = False
        self.preview.show_points([])

    # ------------------------------------------------------------------ geometry
    def pixel_at(self, view_pos: QPointF) -> tuple[int, int]:
        """The image pixel under a viewport position."""
        inverse, _ = self.canvas.viewportTransform().inverted()
        p = inverse.map(QPointF(view_pos))
        return math.floor(p.x()), math.floor(p.y())

    def _inside(self, session: EditSession, x: int, y: int) -> bool:
        h, w = session.labels.shape
        return 0 <= x < w and 0 <= y < h

    def _update_cursor(self) -> None:
        vp = self.canvas.viewport()
        if self.enabled:
            vp.setCursor(Qt.CursorShape.CrossCursor)
        else:
            vp.unsetCursor()
        self.cursor.setVisible(False)

    # ------------------------------------------------------------------ events
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        """Handle the tools' mouse, wheel and key events; pass everything else on."""
        if not self.enabled:
            return False
        t = event.type()
        if obj is self.canvas:
            if t == E.ShortcutOverride:
                if self._wants_key(event):
                    event.accept()
                    return True
            elif t == E.KeyPress and self._wants_key(event):
                self._on_key(event)
                return True
            return False
        if t == E.Wheel and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            return self._on_wheel(event)
        if t == E.MouseMove:
            self._on_move(event)
            return False  # the canvas still reports the hovered pixel
        if t in (E.MouseButtonPress, E.MouseButtonDblClick):
            return self._on_press(event, t == E.MouseButtonDblClick)
        if t == E.MouseButtonRelease:
            return self._on_release(event)
        if t == E.Leave:
            self.cursor.hide()
        return False

    def _wants_key(self, event: QKeyEvent) -> bool:
        key, mods = event.key(), event.modifiers()
        if mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier):
            return False
        if key in (Qt.Key.Key_BracketLeft, Qt.Key.Key_BracketRight):
            return True
        if Qt.Key.Key_0 <= key <= Qt.Key.Key_9:
            return True
        return key in _POLY_KEYS and self.busy

    def _on_key(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_BracketLeft, Qt.Key.Key_BracketRight):
            self.set_size(next_size(self.size, key == Qt.Key.Key_BracketRight))
        elif Qt.Key.Key_0 <= key <= Qt.Key.Key_9:
            cls = int(key - Qt.Key.Key_0)
            if self.num_classes and cls >= self.num_classes:
                self.message.emit("warning", f"There is no class {cls} (0..{self.num_classes - 1})")
            else:
                self.set_class(cls)
        elif key == Qt.Key.Key_Escape:
            self.cancel_pending()
        elif key == Qt.Key.Key_Backspace:
            if self._points:
                self._points.pop()
                self.preview.show_points(self._points)
        else:
            self._close_polygon()

    def _on_wheel(self, event: QWheelEvent) -> bool:
        steps = event.angleDelta().y()
        if steps:
            self.set_size(next_size(self.size, steps > 0))
        event.accept()
        return True

    def _on_press(self, event: QMouseEvent, double: bool) -> bool:
        session = self._session()
        button = event.button()
        if session is None:
            return False
        x, y = self.pixel_at(event.position())
        if button == Qt.MouseButton.RightButton and self.tool == "polygon" and self._points:
            self._close_polygon()
            return True
        if button != Qt.MouseButton.LeftButton:
            return False
        tool = self.tool
        if tool in ("brush", "eraser"):
            if self._stroke is None:
                value = self.cls if tool == "brush" else self.eraser_value
                self._stroke = session.image.begin_stroke(
                    value, label=TOOLS[tool].lower(), preserve_label=self.preserve
                )
                self._last = (x, y)
                self._paint_segment([(x, y)])
        elif tool == "fill":
            self._fill(session, x, y)
        elif tool == "eyedropper":
            self._pick(session, x, y)
        elif tool == "polygon":
            if double:
                self._close_polygon()
            else:
                self._points.append((x, y))
                self.preview.show_points(self._points)
        elif tool == "lasso":
            self._points = [(x, y)]
            self._dragging_lasso = True
        return True

    def _on_move(self, event: QMouseEvent) -> None:
        x, y = self.pixel_at(event.position())
        if self.tool in ("brush", "eraser"):
            self.cursor.move_to(x, y)
        if self._stroke is not None and self._last is not None:
            if (x, y) != self._last:
                self._paint_segment([self._last, (x, y)])
                self._last = (x, y)
        elif self._dragging_lasso:
            if (x, y) != self._points[-1]:
                self._points.append((x, y))
                self.preview.show_points(self._points)
        elif self.tool == "polygon" and self._points:
            self.preview.show_points(self._points, (x, y))

    def _on_release(self, event: QMouseEvent) -> bool:
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        session = self._session()
        if self._stroke is not None:
            x, y = self.pixel_at(event.position())
            if self._last is not None and (x, y) != self._last:
                self._paint_segment([self._last, (x, y)])
            stroke, self._stroke, self._last = self._stroke, None, None
            edit = stroke.finish()
            if session is not None and session.push(edit):
                self.edited.emit()
            return True
        if self._dragging_lasso:
            self._dragging_lasso = False
            points, self._points = self._points, []
            self.preview.show_points([])
            if session is not None and len(points) >= 3:
                from core.annotation import lasso

                self._apply(session, lasso(points, session.labels.shape), "lasso")
            return True
        return self.tool in ("fill", "eyedropper", "polygon") and session is not None

    # ------------------------------------------------------------------ tools
    def _paint_segment(self, points: list[tuple[int, int]]) -> None:
        from core.annotation import brush_stroke

        stroke = self._stroke
        region = brush_stroke(points, brush_radius(self.size), stroke.image.shape)
        if region.count:
            stroke.add(region)

    def _apply(self, session: EditSession, region: object, name: str) -> None:
        edit = session.image.paint(region, self.cls, label=name, preserve_label=self.preserve)
        if session.push(edit):
            self.edited.emit()

    def _fill(self, session: EditSession, x: int, y: int) -> None:
        if not self._inside(session, x, y):
            return
        from core.annotation import flood_fill

        region = flood_fill(session.labels, (x, y), contiguous=self.fill_contiguous)
        self._apply(session, region, "fill" if self.fill_contiguous else "fill all")

    def _pick(self, session: EditSession, x: int, y: int) -> None:
        if not self._inside(session, x, y):
            return
        from core.annotation import eyedropper

        value = eyedropper(session.labels, (x, y))
        if value == VOID:
            self.message.emit("warning", "That pixel is void (255): paint void with the eraser "
                                         "set to 'void'")
            return
        self.set_class(value)
        self.set_tool(self._previous_tool)

    def _close_polygon(self) -> None:
        points, self._points = self._points, []
        self.preview.show_points([])
        session = self._session()
        if session is None or len(points) < 3:
            return
        from core.annotation import polygon_fill

        self._apply(session, polygon_fill(points, session.labels.shape), "polygon")
