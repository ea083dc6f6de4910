"""The editor's tools and their settings: the class, the brush size, the eraser's target,
*paint over*, the fill mode, polygon snapping; kept across sessions by :func:`remember_tools`.

:class:`ToolSettings` is the state half of
:class:`~app.features.editing.tool_controller.ToolController` (which adds the events), so
the dock, the keys and the tools with the image and the model read and change one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QMouseEvent

from app.features.editing.session import EditSession
from app.services.settings import Settings

if TYPE_CHECKING:
    from app.features.editing.tool_controller import ToolController

TOOLS: dict[str, str] = {
    "brush": "Brush", "eraser": "Eraser", "fill": "Fill", "polygon": "Polygon",
    "lasso": "Lasso", "eyedropper": "Eyedropper", "superpixel": "Superpixel Brush",
    "superfill": "Superpixel Fill", "wand": "Magic Wand", "correct": "Click Correct",
}
"""Tool ids and their names."""
FOOTPRINT_TOOLS = ("brush", "eraser", "superpixel")
"""Tools whose cursor outlines the brush footprint."""
MIN_SIZE, MAX_SIZE = 1, 255
VOID = 255


class ToolHandler(Protocol):
    """A tool implemented outside the controller: it gets the canvas's mouse events (in
    image pixels) while it is the current tool, annotating."""

    busy: bool
    """A drag is in progress (autosave waits; Esc cancels it)."""

    def press(self, session: EditSession, x: int, y: int, event: QMouseEvent) -> bool:
        """A button was pressed (True: handled)."""
        ...

    def move(self, x: int, y: int, event: QMouseEvent) -> None:
        """The mouse moved."""
        ...

    def release(self, session: EditSession | None, x: int, y: int, event: QMouseEvent
                ) -> bool:
        """A button was released (True: handled)."""
        ...

    def cancel(self) -> None:
        """Abandon what is in progress (another tool, image or session, annotate off)."""
        ...


def next_size(size: int, up: bool) -> int:
    """The brush size after one ``]`` (``up``) or ``[``: steps of 1 below 10, else ~15%."""
    step = 1 if size < 10 else max(1, round(size * 0.15))
    return max(MIN_SIZE, min(MAX_SIZE, size + (step if up else -step)))


class ToolSettings(QObject):
    """The tools' settings (see the module doc).

    Signals:
        toolChanged(str), classChanged(int), sizeChanged(int), eraserChanged(int),
        preserveChanged(object), fillModeChanged(bool), snapChanged(bool): a setting
            changed (preserve: a class or None; fill mode: contiguous region only; snap:
            closed polygons snap to the image's edges).
        message(str, str): level and text for the user.
    """

    toolChanged = Signal(str)
    classChanged = Signal(int)
    sizeChanged = Signal(int)
    eraserChanged = Signal(int)
    preserveChanged = Signal(object)
    fillModeChanged = Signal(bool)
    snapChanged = Signal(bool)
    message = Signal(str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        """The defaults: brush, class 1, 9 px, eraser to background, contiguous fill."""
        super().__init__(parent)
        self.tool = "brush"
        self.cls = 1
        self.size = 9
        self.eraser_value = 0
        self.preserve: int | None = None
        self.fill_contiguous = True
        self.snap_edges = False
        self.num_classes = 0

    def set_class(self, cls: int) -> None:
        """Paint with class ``cls``."""
        cls = int(cls)
        if self.num_classes and not 0 <= cls < self.num_classes:
            return
        if cls != self.cls:
            self.cls = cls
            self.classChanged.emit(cls)

    def choose_class(self, cls: int) -> bool:
        """A class key: paint with ``cls``, or say that the model has no such class."""
        if self.num_classes and not 0 <= int(cls) < self.num_classes:
            self.message.emit("warning", f"There is no class {cls} (0..{self.num_classes - 1})")
            return False
        self.set_class(cls)
        return True

    def step_size(self, up: bool) -> None:
        """One ``]`` (``up``) or ``[``: the next brush size (:func:`next_size`)."""
        self.set_size(next_size(self.size, up))

    def set_size(self, size: int) -> None:
        """Brush and eraser diameter in pixels."""
        size = max(MIN_SIZE, min(MAX_SIZE, int(size)))
        if size != self.size:
            self.size = size
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
        """Fill (and the wand: grow) the clicked region only (True) or take every pixel of
        the clicked label (colour) in the image (False)."""
        on = bool(on)
        if on != self.fill_contiguous:
            self.fill_contiguous = on
            self.fillModeChanged.emit(on)

    def set_snap_edges(self, on: bool) -> None:
        """Snap closed polygons to the image's edges."""
        on = bool(on)
        if on != self.snap_edges:
            self.snap_edges = on
            self.snapChanged.emit(on)

    def set_num_classes(self, n: int) -> None:
        """The mask's class count (digits and the class choice are checked against it)."""
        self.num_classes = int(n)
        if n and self.cls >= n:
            self.set_class(1 if n > 1 else 0)


def remember_tools(tools: ToolController, settings: Settings) -> None:
    """Give ``tools`` the brush size, eraser target, snapping and tool of the last session,
    and keep them in ``settings`` as they change (the eyedropper, a tool of one click, is
    not kept: the tool it returns to is)."""
    tools.set_size(settings.brush_size)
    tools.set_eraser_value(settings.eraser_value)
    tools.set_snap_edges(bool(settings.value("editing/snap_edges", False, bool)))
    if settings.edit_tool in TOOLS and settings.edit_tool != "eyedropper":
        tools.set_tool(settings.edit_tool)

    def keep_tool(tool: str) -> None:
        if tool != "eyedropper":
            settings.edit_tool = tool

    def keep_size(size: int) -> None:
        settings.brush_size = size

    def keep_eraser(value: int) -> None:
        settings.eraser_value = value

    def keep_snap(on: bool) -> None:
        settings.set("editing/snap_edges", bool(on))

    tools.sizeChanged.connect(keep_size)
    tools.eraserChanged.connect(keep_eraser)
    tools.toolChanged.connect(keep_tool)
    tools.snapChanged.connect(keep_snap)
