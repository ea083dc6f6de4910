"""One brush segment on a 4096x4096 mask, as the app paints it.

A mouse move while painting computes the segment's capsule footprint (core
``brush_stroke``), writes it into the mask (``Stroke.add``: only the changed pixels, old
values kept for undo), recolors the dirty box of the persistent ARGB32_Premultiplied
buffer through the class LUT and schedules a repaint of that rectangle only
(``MaskLayerItem.recolor``). The benchmark times exactly that, segment by segment, along a
random walk of mouse moves (8 px apart on average, like a quick drag at 100% zoom); it also
times the whole mouse-move handler (a real QMouseEvent sent to the canvas) and the next
event-loop turn, in which the view repaints the dirty rectangle. Prints a markdown table row.

    python benchmarks/app_brush.py --segments 600 --size 25
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

import numpy as np
from app_common import machine, percentiles

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

BUDGET_MS = 4.0


def walk(n: int, start: tuple[float, float], step: float, size: int, seed: int = 0
         ) -> list[tuple[int, int]]:
    """``n`` integer pixel positions of a random walk (mouse positions)."""
    rng = np.random.default_rng(seed)
    p, angle, out = np.array(start, float), 0.0, []
    for _ in range(n):
        angle += rng.normal(0, 0.4)
        p = np.clip(p + step * np.array([np.cos(angle), np.sin(angle)]), 0, size - 1)
        out.append((int(p[0]), int(p[1])))
    return out


def main() -> None:
    """Run the benchmark and print the result row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=600)
    parser.add_argument("--size", type=int, default=25, help="brush diameter in pixels")
    parser.add_argument("--image", type=int, default=4096)
    parser.add_argument("--step", type=float, default=8.0, help="pixels between mouse events")
    args = parser.parse_args()
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    import app  # noqa: F401  (the PySide6 reference-count workaround)
    from app.canvas.canvas import ImageCanvas
    from app.canvas.layers import Z_EDIT
    from app.common.render import rgb_image
    from app.features.editing.cursor import brush_radius
    from app.features.editing.mask_layer import MaskLayerItem
    from app.features.editing.session import EditSession
    from app.features.editing.tool_controller import ToolController
    from core.annotation import brush_stroke
    from core.data.palette import VOC_PALETTE

    qapp = QApplication.instance() or QApplication([])
    n = args.image
    rng = np.random.default_rng(1)
    labels = np.zeros((n, n), np.uint8)
    labels[: n // 2] = 1
    session = EditSession(None, labels, 21, "benchmark")
    canvas = ImageCanvas()
    canvas.resize(1200, 900)
    canvas.show()
    canvas.set_image(rgb_image(rng.integers(0, 256, (n, n, 3), dtype=np.uint8)))
    layer = MaskLayerItem()
    canvas.add_layer("mask", layer, Z_EDIT)
    layer.set_colors([tuple(int(c) for c in VOC_PALETTE[i]) for i in range(21)])
    layer.set_labels(session.labels)
    layer.active = True
    session.image.on_change.append(layer.recolor)
    canvas.set_zoom(1.0)
    canvas.centerOn(QPointF(n / 2, n / 2))
    for _ in range(10):
        qapp.processEvents()
    radius = brush_radius(args.size)
    shape = session.labels.shape

    # 1. the segment as the app computes it: footprint + mask update + LUT recolor of the box
    points = walk(args.segments + 1, (n / 2, n / 2), args.step, n)
    stroke = session.image.begin_stroke(5)
    seg_ms = []
    for a, b in itertools.pairwise(points):
        t0 = time.perf_counter()
        region = brush_stroke([a, b], radius, shape)
        stroke.add(region)  # -> on_change -> layer.recolor(bbox) -> update(rect)
        seg_ms.append((time.perf_counter() - t0) * 1e3)
    session.push(stroke.finish())

    # 2. the whole mouse-move handler on the canvas, 3. the next turn (dirty-rect repaint)
    tools = ToolController(canvas, lambda: session)
    tools.set_enabled(True)
    tools.set_size(args.size)
    tools.set_class(7)
    vp = canvas.viewport()

    def send(kind: QEvent.Type, x: int, y: int, button: Qt.MouseButton) -> float:
        pos = QPointF(canvas.mapFromScene(QPointF(x + 0.5, y + 0.5)))
        ev = QMouseEvent(kind, pos, vp.mapToGlobal(pos), button,
                         Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
        t0 = time.perf_counter()
        QApplication.sendEvent(vp, ev)
        return (time.perf_counter() - t0) * 1e3

    left = Qt.MouseButton.LeftButton
    view_points = walk(min(args.segments, 300) + 1, (n / 2, n / 2), args.step, n, seed=2)
    visible = canvas.mapToScene(vp.rect()).boundingRect()
    view_points = [(int(np.clip(x, visible.left() + 30, visible.right() - 30)),
                    int(np.clip(y, visible.top() + 30, visible.bottom() - 30)))
                   for x, y in view_points]
    send(QEvent.Type.MouseButtonPress, *view_points[0], left)
    move_ms, paint_ms = [], []
    for x, y in view_points[1:]:
        move_ms.append(send(QEvent.Type.MouseMove, x, y, Qt.MouseButton.NoButton))
        t0 = time.perf_counter()
        qapp.processEvents()  # the view repaints the dirty rectangle only
        paint_ms.append((time.perf_counter() - t0) * 1e3)
    send(QEvent.Type.MouseButtonRelease, *view_points[-1], left)
    assert session.stack.count() == 2

    seg, move, paint = percentiles(seg_ms), percentiles(move_ms), percentiles(paint_ms)
    verdict = "within" if seg["p50"] <= BUDGET_MS else "OVER"
    print(f"Brush {args.size} px on {n}x{n}, {seg['n']} segments {args.step:g} px apart: "
          f"segment p50 {seg['p50']:.2f} ms, p99 {seg['p99']:.2f}, max {seg['max']:.2f} "
          f"({verdict} the {BUDGET_MS:g} ms budget); mouse-move handler p50 "
          f"{move['p50']:.2f} ms; event-loop turn with the dirty repaint at 100% p50 "
          f"{paint['p50']:.2f} ms; "
          f"undo history {session.history_bytes() / 1024:.0f} KiB")
    print(f"| One brush segment on a {n}² mask (footprint + mask update + LUT recolor of the "
          f"dirty rect), brush {args.size} px, {seg['n']} segments: median (p99) | "
          f"`python benchmarks/app_brush.py --segments {args.segments} --size {args.size}` | "
          f"**{seg['p50']:.2f} ms** ({seg['p99']:.2f} ms); whole mouse-move handler "
          f"{move['p50']:.2f} ms, dirty-rect repaint {paint['p50']:.2f} ms "
          f"({machine()}, load {os.getloadavg()[0]:.1f}) | ≤ {BUDGET_MS:g} ms |")


if __name__ == "__main__":
    main()
