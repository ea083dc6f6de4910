"""ToolController: turns mouse, wheel and key events on a canvas into mask edits.

Tools: brush and eraser (round, interpolated between mouse events by the core's capsule
footprint, so fast moves leave no gaps), flood fill, polygon (click vertices; double-click,
right-click or Enter closes; Backspace removes the last; Esc cancels), lasso (drag) and
eyedropper; the tools with the image and the model (superpixel brush and fill, magic wand,
click correction) are :class:`ToolHandler` s added by the feature
(:mod:`app.features.editing.edge_tools_ui`, :mod:`app.features.editing.click_correct`), and
with *Snap to edges* a closed polygon goes to the :attr:`ToolController.snapper`. Points snap
to pixel centres, so a click paints exactly the footprint the brush cursor shows.
Ctrl+wheel changes the size (plain wheel still zooms, middle button still pans). The
settings (class, size, ...) are :class:`~app.features.editing.tool_settings.ToolSettings`'.
The digits and ``[`` / ``]`` are window-wide actions
(:class:`app.features.editing.edit_actions.CanvasKeys`) calling :meth:`ToolController.choose_class`
and :meth:`ToolController.step_size`; the polygon's keys (Enter, Backspace, Esc) go to the
canvas.

A press that activates the window (it was not the active window, or became it an instant
before) only gives the canvas the focus and paints nothing: the click was meant to bring
the window forward. In the active window a press paints even when another widget had the
focus, since no key needs the canvas focus any more (and a stroke right after using the
dock is meant to paint), as in napari and labelme.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, QPointF, Qt, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent, QWheelEvent

from app.canvas.canvas import ImageCanvas
from app.features.editing.cursor import BrushCursorItem, PathPreviewItem, brush_radius
from app.features.editing.session import EditSession
from app.features.editing.tool_settings import (
    FOOTPRINT_TOOLS,
    MAX_SIZE,
    MIN_SIZE,
    TOOLS,
    VOID,
    ToolHandler,
    ToolSettings,
    next_size,
)

__all__ = ["MAX_SIZE", "MIN_SIZE", "TOOLS", "ToolController", "ToolHandler"]

E = QEvent.Type
ACTIVATION_CLICK_S = 0.15
"""A press this soon after the window became active is the click that activated it (Qt
may handle the activation before the press that caused it)."""
_POLY_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape, Qt.Key.Key_Backspace)


class ToolController(ToolSettings):
    """Applies the current tool to the current :class:`EditSession` on one canvas.

    Attributes:
        handlers: The tools implemented elsewhere, by tool id.
        snapper: ``snapper(session, points)`` snaps and fills a closed polygon later (True:
            it takes it over); used while :attr:`snap_edges` is on.

    Signals (besides :class:`ToolSettings`'):
        edited(): an edit was pushed on the session's undo stack.
    """

    edited = Signal()

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
        self.snapper: Callable[[EditSession, list[tuple[int, int]]], bool] | None = None
        self.handlers: dict[str, ToolHandler] = {}
        self._previous_tool = "brush"
        self._stroke: object | None = None
        self._last: tuple[int, int] | None = None
        self._points: list[tuple[int, int]] = []
        self._dragging_lasso = False
        self._activated_at: float | None = None  # when the window last became active
        self._activating: float | None = None  # when a press asked for the activation
        self.cursor = BrushCursorItem()
        self.preview = PathPreviewItem()
        self.cursor.set_size(self.size)
        self.sizeChanged.connect(self.cursor.set_size)
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

    @property
    def busy(self) -> bool:
        """Whether a stroke, polygon, lasso or a handler's drag is in progress."""
        return (self._stroke is not None or bool(self._points)
                or any(h.busy for h in self.handlers.values()))

    def cancel_pending(self) -> None:
        """Abandon a stroke (reverting it), a polygon or a lasso in progress."""
        if self._stroke is not None:
            self._stroke.cancel()
            self._stroke = None
        self._points = []
        self._dragging_lasso = False
        self.preview.show_points([])
        for handler in self.handlers.values():
            handler.cancel()

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
        t = event.type()
        if t == E.WindowActivate and obj is self.canvas:
            self._on_window_activated()
        if not self.enabled:
            return False
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
        return key in _POLY_KEYS and self.busy

    def _on_key(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_Escape:
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
        handler = self.handlers.get(self.tool)
        if handler is not None and button != Qt.MouseButton.LeftButton:
            return handler.press(session, x, y, event)
        if button != Qt.MouseButton.LeftButton:
            return False
        if self._activating_press():
            return True  # (the release that follows finds nothing to finish)
        if handler is not None:
            return handler.press(session, x, y, event)
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

    def _on_window_activated(self) -> None:
        now = time.monotonic()
        asked, self._activating = self._activating, None
        if asked is None or now - asked > 1.0:  # (not the activation a press asked for)
            self._activated_at = now

    def _activating_press(self) -> bool:
        """Whether a press is the click that activates the window (then it only focuses)."""
        activated, self._activated_at = self._activated_at, None
        window = self.canvas.window()
        if not window.isActiveWindow():
            self._activating = time.monotonic()
            window.activateWindow()
            self.canvas.setFocus(Qt.FocusReason.ActiveWindowFocusReason)
            return True
        return activated is not None and time.monotonic() - activated < ACTIVATION_CLICK_S

    def _on_move(self, event: QMouseEvent) -> None:
        x, y = self.pixel_at(event.position())
        if self.tool in FOOTPRINT_TOOLS:
            self.cursor.move_to(x, y)
        handler = self.handlers.get(self.tool)
        if handler is not None:
            handler.move(x, y, event)
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
        handler = self.handlers.get(self.tool)
        if handler is not None:
            return handler.release(self._session(), *self.pixel_at(event.position()), event)
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

                self.apply(session, lasso(points, session.labels.shape), "lasso")
            return True
        return self.tool in ("fill", "eyedropper", "polygon") and session is not None

    # ------------------------------------------------------------------ tools
    def _paint_segment(self, points: list[tuple[int, int]]) -> None:
        from core.annotation import brush_stroke

        stroke = self._stroke
        region = brush_stroke(points, brush_radius(self.size), stroke.image.shape)
        if region.count:
            stroke.add(region)

    def apply(self, session: EditSession, region: Any, name: str, value: int | None = None
              ) -> bool:
        """Paint ``region`` (a core Region) with ``value`` (default: the class), over the
        *paint over* class only when one is set, as one undoable, journaled edit."""
        value = self.cls if value is None else value
        edit = session.image.paint(region, value, label=name, preserve_label=self.preserve)
        if session.push(edit):
            self.edited.emit()
            return True
        return False

    def _fill(self, session: EditSession, x: int, y: int) -> None:
        if not self._inside(session, x, y):
            return
        from core.annotation import flood_fill

        region = flood_fill(session.labels, (x, y), contiguous=self.fill_contiguous)
        self.apply(session, region, "fill" if self.fill_contiguous else "fill all")

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
        if self.snap_edges and self.snapper is not None and self.snapper(session, points):
            return  # (the snapper fills the snapped polygon when it has it)
        from core.annotation import polygon_fill

        self.apply(session, polygon_fill(points, session.labels.shape), "polygon")
