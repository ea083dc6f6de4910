"""What the canvas shows of the tools with the image and the model, and the pending preview.

Scene items, added with ``ImageCanvas.add_layer`` (the canvas itself is not changed):
:class:`ArgbItem` draws a uint32 ARGB array into a rectangle of the image (the superpixel
boundaries at z :data:`Z_SUPERPIXELS`, a preview's new labels and its changed pixels'
outline at :data:`Z_PREVIEW`); :class:`HintMarks` draws click-correction clicks and
scribbles (:data:`Z_HINTS`). All sit over the mask being edited and under the brush cursor.

:class:`PreviewControl` holds the one pending preview (a refinement or a click correction):
the bar over the canvas (what would change, Before / After, Accept, Discard) and the
actions of Edit > Accept Preview (Enter), Discard Preview (Esc), Show Before / After (V),
which hold their keys only while a preview is pending (a
:class:`~app.features.editing.edit_actions.KeyLoan`: Model > Cancel yields Esc meanwhile).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QStyleOptionGraphicsItem,
    QToolButton,
    QWidget,
)

from app.canvas.canvas import ImageCanvas
from app.canvas.layers import Z_EDIT
from app.features.editing.edit_actions import EditActions
from app.features.editing.mask_layer import label_lut

Z_SUPERPIXELS = Z_EDIT + 1
Z_PREVIEW = Z_EDIT + 2
Z_HINTS = Z_EDIT + 3
POSITIVE, NEGATIVE = QColor(40, 230, 90), QColor(255, 60, 60)


def mask_lut(state: object) -> np.ndarray:
    """The mask layer's color table for ``state`` (a ViewerState): the mask's classes'
    colors, hidden classes clear."""
    colors = getattr(state, "mask_colors", None) or state.colors  # type: ignore[attr-defined]
    return label_lut(colors(), state.hidden_classes)  # type: ignore[attr-defined]


def mask_class_names(state: object) -> list[str]:
    """The classes of the mask being edited (the project's, else the model's)."""
    names = getattr(state, "mask_class_names", None) or state.class_names  # type: ignore
    return list(names())


class ArgbItem(QGraphicsItem):
    """Draws a uint32 premultiplied ARGB array into an image rectangle (pixels as squares)."""

    def __init__(self) -> None:
        """Empty."""
        super().__init__()
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self._array: np.ndarray | None = None
        self._image: QImage | None = None
        self._rect = QRectF()

    @property
    def array(self) -> np.ndarray | None:
        """The array shown (None: nothing)."""
        return self._array

    @property
    def rect(self) -> QRectF:
        """Where it is drawn, in image pixels."""
        return QRectF(self._rect)

    def set_array(self, array: np.ndarray | None, rect: QRectF | None = None) -> None:
        """Show ``array`` stretched over ``rect`` (default: its size at the origin)."""
        self.prepareGeometryChange()
        if array is None:
            self._array, self._image, self._rect = None, None, QRectF()
        else:
            a = np.ascontiguousarray(array, np.uint32)
            h, w = a.shape
            self._array = a
            self._image = QImage(a.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied)
            self._rect = QRectF(rect) if rect is not None else QRectF(0, 0, w, h)
        self.update()

    def boundingRect(self) -> QRectF:
        """The rectangle drawn into."""
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        """Draw the exposed part only."""
        image = self._image
        if image is None or self._rect.isEmpty():
            return
        target = option.exposedRect.intersected(self._rect)
        if target.isEmpty():
            return
        sx, sy = image.width() / self._rect.width(), image.height() / self._rect.height()
        source = QRectF((target.left() - self._rect.left()) * sx,
                        (target.top() - self._rect.top()) * sy,
                        target.width() * sx, target.height() * sy)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(target, image, source)


@dataclass(frozen=True)
class Hint:
    """A click (one point) or a scribble (several), positive or negative."""

    points: tuple[tuple[float, float], ...]
    positive: bool


class HintMarks(QGraphicsItem):
    """The clicks and scribbles of a click correction: + in green, - in red (a fixed size
    on screen at any zoom)."""

    def __init__(self) -> None:
        """No hints."""
        super().__init__()
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.hints: list[Hint] = []
        self._box = QRectF()

    def set_hints(self, hints: list[Hint]) -> None:
        """Show ``hints`` (image pixel coordinates)."""
        self.prepareGeometryChange()
        self.hints = list(hints)
        pts = [p for h in hints for p in h.points]
        if pts:
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            self._box = QRectF(min(xs) - 64, min(ys) - 64, max(xs) - min(xs) + 129,
                               max(ys) - min(ys) + 129)
        else:
            self._box = QRectF()
        self.update()

    def boundingRect(self) -> QRectF:
        """Around every hint (with room for the symbols at low zoom)."""
        return self._box

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        """Draw each hint: a scribble's path, a click's disc with its sign."""
        zoom = max(1e-3, painter.worldTransform().m11())
        r = 7 / zoom
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for hint in self.hints:
            color = POSITIVE if hint.positive else NEGATIVE
            centre = [QPointF(x + 0.5, y + 0.5) for x, y in hint.points]
            if len(centre) > 1:
                path = QPainterPath(centre[0])
                for p in centre[1:]:
                    path.lineTo(p)
                pen = QPen(color, 3)
                pen.setCosmetic(True)
                painter.setPen(pen)
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawPath(path)
            c = centre[0] if len(centre) == 1 else centre[-1]
            outline = QPen(QColor(0, 0, 0), 1.5)
            outline.setCosmetic(True)
            painter.setPen(outline)
            painter.setBrush(color)
            painter.drawEllipse(c, r, r)
            sign = QPen(QColor(255, 255, 255), 2)
            sign.setCosmetic(True)
            painter.setPen(sign)
            painter.drawLine(QPointF(c.x() - r * 0.55, c.y()), QPointF(c.x() + r * 0.55, c.y()))
            if hint.positive:
                painter.drawLine(QPointF(c.x(), c.y() - r * 0.55),
                                 QPointF(c.x(), c.y() + r * 0.55))


class PreviewBar(QFrame):
    """The bar over the canvas while a preview is pending: text, Before/After, Accept,
    Discard (the buttons are the Edit menu's actions)."""

    def __init__(self, canvas: ImageCanvas, actions: EditActions) -> None:
        """A hidden child of ``canvas``, kept at the top centre of its viewport."""
        super().__init__(canvas)
        self.canvas = canvas
        self.setObjectName("previewBar")
        self.setStyleSheet("#previewBar { background: rgba(30, 30, 30, 215); border-radius: 6px; }"
                           " QLabel { color: white; } QToolButton { padding: 2px 8px; }")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 6, 4)
        self.label = QLabel("", self)
        self.label.setWordWrap(True)
        layout.addWidget(self.label, 1)
        self.buttons: dict[str, QToolButton] = {}
        for name, action in (("before_after", actions.before_after),
                             ("accept", actions.accept_preview),
                             ("discard", actions.discard_preview)):
            button = QToolButton(self)
            button.setDefaultAction(action)
            layout.addWidget(button)
            self.buttons[name] = button
        actions.accept_preview.setIconText("Accept (Enter)")
        actions.discard_preview.setIconText("Discard (Esc)")
        actions.before_after.setIconText("After (V)")
        self.hide()
        canvas.installEventFilter(self)

    def show_text(self, text: str) -> None:
        """Show the bar with ``text``."""
        self.label.setText(text)
        self._place()
        self.show()
        self.raise_()

    def _place(self) -> None:
        vp = self.canvas.viewport().geometry()
        self.setMaximumWidth(max(200, vp.width() - 16))
        self.adjustSize()
        self.move(vp.left() + max(0, (vp.width() - self.width()) // 2), vp.top() + 8)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        """Stay at the top centre when the canvas is resized."""
        if event.type() == QEvent.Type.Resize and self.isVisible():
            self._place()
        return False


class PreviewControl(QObject):
    """The one pending preview (see the module doc).

    Signals:
        afterShownChanged(bool): show the previewed labels (True) or the mask as it is.
    """

    afterShownChanged = Signal(bool)

    def __init__(self, canvas: ImageCanvas, actions: EditActions,
                 parent: QObject | None = None) -> None:
        """Add the preview layers and the bar to ``canvas``; drive ``actions``' preview
        actions."""
        super().__init__(parent)
        self.canvas, self.actions = canvas, actions
        self.after = canvas.add_layer("correction-after", ArgbItem(), Z_PREVIEW)
        self.marks = canvas.add_layer("correction-marks", ArgbItem(), Z_PREVIEW + 0.1)
        self.bar = PreviewBar(canvas, actions)
        self.owner = ""
        self._accept: Callable[[], object] | None = None
        self._discard: Callable[[], object] | None = None
        actions.accept_preview.triggered.connect(self._on_accept)
        actions.discard_preview.triggered.connect(self._on_discard)
        actions.before_after.toggled.connect(self._on_toggle)

    @property
    def pending(self) -> bool:
        """Whether something waits for Accept or Discard."""
        return bool(self.owner)

    @property
    def after_shown(self) -> bool:
        """Whether the previewed labels are shown (else the mask as it is)."""
        return self.actions.before_after.isChecked()

    def offer(self, owner: str, text: str, *, accept: Callable[[], object] | None,
              discard: Callable[[], object], images: object | None = None,
              before_after: bool = True) -> None:
        """Show ``owner``'s pending state: ``text``, its preview ``images`` (a
        ``PreviewImages`` or None), Accept (None: not yet, e.g. computing), Discard."""
        self.owner, self._accept, self._discard = owner, accept, discard
        self.set_images(images)
        self.bar.buttons["before_after"].setVisible(before_after and images is not None)
        if not self.actions.preview_keys.live:
            self.actions.before_after.setChecked(True)
        self.actions.preview_keys.set_live(True)
        self.actions.accept_preview.setEnabled(accept is not None)
        self.bar.show_text(text)

    def set_images(self, images: object | None) -> None:
        """Show a preview's ``PreviewImages`` (None: none)."""
        if images is None:
            self.after.set_array(None)
            self.marks.set_array(None)
            return
        h, w = images.after.shape
        rect = QRectF(images.x, images.y, w, h)
        self.after.set_array(images.after, rect)
        self.marks.set_array(images.marks, rect)
        self.after.setVisible(self.after_shown)

    def clear(self, owner: str | None = None) -> None:
        """End the pending preview (of ``owner`` only, when given)."""
        if owner is not None and owner != self.owner:
            return
        self.owner, self._accept, self._discard = "", None, None
        self.set_images(None)
        self.bar.hide()
        self.actions.preview_keys.set_live(False)

    def discard_pending(self) -> None:
        """Discard the pending preview, whoever's it is."""
        if self._discard is not None:
            self._discard()

    def _on_accept(self) -> None:
        if self._accept is not None:
            self._accept()

    def _on_discard(self) -> None:
        if self._discard is not None:
            self._discard()

    def _on_toggle(self, on: bool) -> None:
        self.after.setVisible(on)
        self.actions.before_after.setIconText(f"{'After' if on else 'Before'} (V)")
        self.afterShownChanged.emit(on)
