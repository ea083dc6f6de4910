"""A 100 MP image in the app: preview, tiles landing, pan/zoom frames, heatmaps, painting, memory.

The main window (1600x1000, Qt offscreen by default) shows a 10000x10000 photo mosaic
(scikit-image's bundled photos, upscaled into a 4x4 grid; no downloads) and segments it with
the bundled model; then a scripted session browses it:

* **prediction**: time from Run to the preview on screen, to the first tile landed, to the
  full result; event-loop gaps (5 ms heartbeat) meanwhile;
* **pan/zoom**: a path of wheel zooms (x1.25 under the cursor) and drags at 60 steps a
  second (fit -> 200% around a point, a pan at 200%, out to 25%, a diagonal pan, back to
  fit); the Viewer canvas's paint events are timed (``ImageCanvas.frame_times``);
* **heatmaps**: the Heatmaps tab, first map (with each visible tile's log-normalizer) and
  class switches, each timed from the switch until every visible tile is drawn;
* **painting**: Annotate from the FCN-8s prediction, brush drags at 100% (mouse-move
  handler and paint times);
* **memory**: peak resident memory (VmHWM) and what is resident after each phase.

Prints a markdown summary and writes ``benchmarks/results/app-large-image-<name>.json``.

    python benchmarks/app_large_image.py                       # 10000 x 10000
    python benchmarks/app_large_image.py --size 3000x4000 --name 12mp
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from app_common import ROOT, percentiles

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PERIOD_MS = 5
FRAME_BUDGET_MS = 16.7
SWITCH_BUDGET_MS = 100.0
MEMORY_BUDGET_MB = 3072.0


def mosaic(h: int, w: int, grid: int = 4) -> np.ndarray:
    """An ``h x w`` RGB mosaic of scikit-image's bundled photos (each upscaled, cubic),
    written cell by cell into one array (no full-size temporaries)."""
    import cv2
    from skimage import data

    names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "cat",
             "coins", "camera", "retina", "brick", "grass", "gravel", "moon", "page",
             "colorwheel", "logo"]
    out = np.empty((h, w, 3), np.uint8)
    ch, cw = -(-h // grid), -(-w // grid)
    for i in range(grid * grid):
        y, x = (i // grid) * ch, (i % grid) * cw
        if y >= h or x >= w:
            continue
        img = getattr(data, names[i % len(names)])()
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        img = np.ascontiguousarray(img[:, :, :3]).astype(np.uint8)
        hh, ww = min(ch, h - y), min(cw, w - x)
        out[y:y + hh, x:x + ww] = cv2.resize(img, (ww, hh), interpolation=cv2.INTER_CUBIC)
    return out


def memory_mb() -> dict[str, float]:
    """Resident (VmRSS) and peak resident (VmHWM) memory of this process, in MB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return {"rss": out.get("VmRSS", float("nan")), "peak": out.get("VmHWM", float("nan"))}


def machine_text() -> dict[str, object]:
    """CPU, cores, load and date."""
    from benchmarks.runtime_common import cpu_name

    return {"cpu": cpu_name(), "cores": os.cpu_count(), "load": os.getloadavg(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "python": sys.version.split()[0], "qt_platform": os.environ["QT_QPA_PLATFORM"]}


class Driver:
    """Runs the event loop (without spinning) until a condition holds."""

    def __init__(self, app: object) -> None:
        from PySide6.QtCore import QEventLoop, QTimer

        self.app = app
        self.loop = QEventLoop()
        self.poll = QTimer()
        self.poll.setInterval(2)
        self.poll.timeout.connect(self._check)
        self._until: object = None
        self._deadline = 0.0

    def _check(self) -> None:
        if self._until() or time.monotonic() > self._deadline:  # type: ignore[operator]
            self.loop.quit()

    def until(self, condition: object, timeout: float = 600.0) -> bool:
        """Run the event loop until ``condition()`` (checked every 2 ms) or ``timeout``."""
        if condition():  # type: ignore[operator]
            return True
        self._until, self._deadline = condition, time.monotonic() + timeout
        self.poll.start()
        self.loop.exec()
        self.poll.stop()
        return bool(condition())  # type: ignore[operator]

    def run_for(self, seconds: float) -> None:
        """Run the event loop for ``seconds``."""
        end = time.monotonic() + seconds
        self.until(lambda: time.monotonic() >= end, seconds + 1)


def settled(canvas: object) -> bool:
    """Every visible tile of the canvas is built (and the builder idle)."""
    from app.canvas.layers import TileBuilder

    return not canvas.pending and not TileBuilder.instance().busy  # type: ignore[attr-defined]


def pan_zoom_path(canvas: object, drive: Driver, point: tuple[float, float]) -> list[float]:
    """The scripted path at 60 steps a second; returns the paint times (ms)."""
    from PySide6.QtCore import QPointF

    canvas.fit()
    drive.run_for(0.3)
    canvas.frame_times = []
    center = canvas.mapFromScene(QPointF(*point))
    steps: list[object] = []
    steps += [lambda: canvas.zoom_at(1.25, QPointF(center))] * 40  # to (at most) ~200%
    steps += [lambda: canvas.horizontalScrollBar().setValue(
        canvas.horizontalScrollBar().value() + 24)] * 90
    steps += [lambda: canvas.zoom_at(0.8, None)] * 10
    steps += [lambda: (canvas.horizontalScrollBar().setValue(
        canvas.horizontalScrollBar().value() - 40), canvas.verticalScrollBar().setValue(
        canvas.verticalScrollBar().value() + 30))] * 90
    steps += [lambda: canvas.zoom_at(0.8, None)] * 20
    for step in steps:
        if step is steps[0] and canvas.zoom >= 2.0:
            continue
        t0 = time.monotonic()
        step()
        drive.run_for(max(0.0, 1 / 60 - (time.monotonic() - t0)))
    times = [t * 1e3 for t in canvas.frame_times]
    canvas.frame_times = None
    return times


def main() -> None:
    """Run the session and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="10000x10000", help="HxW of the mosaic")
    parser.add_argument("--name", default="100mp")
    parser.add_argument("--switches", type=int, default=14)
    parser.add_argument("--no-paint", action="store_true")
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.lower().split("x"))
    from PySide6.QtCore import QElapsedTimer, QPoint, QPointF, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    import app  # noqa: F401  (the PySide6 reference-count workaround)
    from app.canvas.tiles import tile_cache
    from app.shell.main_window import MainWindow
    from app.state.document import ImageDocument
    from app.workers.inference import PREVIEW_PIXELS

    result: dict[str, object] = {"machine": machine_text(), "size": [h, w]}
    mem: dict[str, dict[str, float]] = {"start": memory_mb()}
    qapp = QApplication.instance() or QApplication([])
    drive = Driver(qapp)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FCN_STUDIO_SETTINGS"] = str(Path(tmp) / "settings.ini")
        window = MainWindow()
        window.actions.autorun.setChecked(False)
        window.resize(1600, 1000)
        window.show()
        drive.run_for(0.3)
        window.inference.load_model(None)
        assert drive.until(lambda: window.controller.model is not None, 300), "no model"
        result["model"] = window.controller.model.info.name
        mem["model loaded"] = memory_mb()
        t0 = time.perf_counter()
        image = mosaic(h, w)
        result["mosaic_s"] = time.perf_counter() - t0
        doc = ImageDocument(image, Path(tmp) / f"mosaic-{h}x{w}.png")
        window.state.set_document(doc)
        drive.run_for(0.5)
        mem["image shown"] = memory_mb()
        viewer = window.viewer.canvas

        # ---------------------------------------------------------------- prediction
        clock = QElapsedTimer()
        ticks: list[float] = []
        beat = QTimer()
        beat.setTimerType(Qt.TimerType.PreciseTimer)
        beat.setInterval(PERIOD_MS)
        beat.timeout.connect(lambda: ticks.append(clock.nsecsElapsed() / 1e6))
        marks: dict[str, float] = {}
        batches: list[int] = []
        ctl = window.controller
        ctl.previewReady.connect(lambda *_: marks.setdefault("preview", time.perf_counter()))
        ctl.tilesLanded.connect(lambda _d, boxes: (
            marks.setdefault("first tile", time.perf_counter()), batches.append(len(boxes))))
        ctl.resultReady.connect(lambda *_: marks.setdefault("result", time.perf_counter()))
        viewer.frame_times = []
        clock.start()
        beat.start()
        start = time.perf_counter()
        window.run_current()
        if h * w > PREVIEW_PIXELS:  # smaller images get no preview
            assert drive.until(lambda: "preview" in marks, 600), "no preview"
            n = len(viewer.frame_times)
            drive.until(lambda: len(viewer.frame_times) > n and settled(viewer), 30)
            marks["preview shown"] = time.perf_counter()
        assert drive.until(lambda: "result" in marks, 3600), "no result"
        drive.run_for(0.5)
        beat.stop()
        landing_frames = [t * 1e3 for t in viewer.frame_times]
        viewer.frame_times = None
        gaps = percentiles(list(np.diff(ticks)))
        result["prediction"] = {
            **{f"{k}_s": v - start for k, v in marks.items()},
            "tile_batches": len(batches), "tiles": sum(batches),
            "event_loop_gaps_ms": gaps, "frames_while_landing_ms": percentiles(landing_frames),
            "runtime": window.models.runtime,
        }
        mem["segmented"] = memory_mb()

        # ---------------------------------------------------------------- pan and zoom
        frames = pan_zoom_path(viewer, drive, (w * 0.62, h * 0.38))
        result["pan_zoom_frames_ms"] = percentiles(frames)
        mem["browsed"] = memory_mb()

        # ---------------------------------------------------------------- heatmaps
        window.tabs.setCurrentWidget(window.heatmaps)
        heat = window.heatmaps.canvas
        drive.run_for(0.2)
        heat.set_zoom(0.5)
        heat.centerOn(QPointF(w * 0.3, h * 0.6))

        def shown(cls: int, timeout: float) -> float:
            """Seconds from the class switch until the map is painted with every visible
            tile built (a paint after the switch, nothing pending)."""
            heat.frame_times = []
            t0 = time.perf_counter()
            window.state.set_heatmap(cls=cls)
            drive.until(lambda: len(heat.frame_times) > 0 and settled(heat), timeout)
            spent = time.perf_counter() - t0
            heat.frame_times = None
            return spent

        first_map = shown(1, 120)
        classes = len(window.state.class_names())
        switches = [shown((k + 2) % classes, 60) * 1e3 for k in range(args.switches)]
        heat_frames = pan_zoom_path(heat, drive, (w * 0.3, h * 0.6))
        result["heatmap"] = {"first_map_s": first_map, "switch_ms": percentiles(switches),
                             "pan_zoom_frames_ms": percentiles(heat_frames)}
        mem["heatmaps"] = memory_mb()
        window.tabs.setCurrentWidget(window.viewer)
        drive.run_for(0.2)

        # ---------------------------------------------------------------- painting
        if not args.no_paint:
            manager = window.editing.manager
            manager.set_annotating(True)
            t0 = time.perf_counter()
            manager.start("8s")
            start_s = time.perf_counter() - t0
            tools = window.editing.tools
            tools.set_tool("brush")
            viewer.set_zoom(1.0)
            viewer.centerOn(QPointF(w * 0.5, h * 0.5))
            drive.run_for(0.3)
            vp = viewer.viewport()
            viewer.frame_times = []
            moves: list[float] = []
            for stroke in range(4):
                y = vp.height() // 3 + 60 * stroke
                QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                                 QPoint(100, y))
                for x in range(110, min(vp.width() - 100, 110 + 8 * 100), 8):
                    t0 = time.perf_counter()
                    QTest.mouseMove(vp, QPoint(x, y + (x // 8) % 5))
                    moves.append((time.perf_counter() - t0) * 1e3)
                    drive.run_for(1 / 120)
                QTest.mouseRelease(vp, Qt.MouseButton.LeftButton,
                                   Qt.KeyboardModifier.NoModifier, QPoint(x, y))
                drive.run_for(0.05)
            paint_frames = [t * 1e3 for t in viewer.frame_times]
            viewer.frame_times = None
            result["painting"] = {"start_mask_s": start_s, "mouse_move_ms": percentiles(moves),
                                  "frames_ms": percentiles(paint_frames)}
            mem["painted"] = memory_mb()
        cache = tile_cache()
        result["tile_cache"] = {"bytes": cache.nbytes, "budget": cache.max_bytes,
                                "tiles": len(cache), "evictions": cache.evictions}
        window.controller.shutdown()
        # The mosaic is not a file, so its mask cannot be saved: close without asking.
        window.editing.confirm_discard = lambda failed: True
        window.close()
    result["memory_mb"] = mem
    result["peak_rss_mb"] = max(m["peak"] for m in mem.values())
    result["machine"]["load_after"] = os.getloadavg()  # type: ignore[index]
    out = ROOT / "benchmarks" / "results" / f"app-large-image-{args.name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(summary(result))
    print(f"written {out}")


def summary(r: dict) -> str:
    """The markdown table of a result."""
    p, f, hm = r["prediction"], r["pan_zoom_frames_ms"], r["heatmap"]
    rows = [
        ("preview on screen", f"{p['preview shown_s']:.2f} s" if "preview shown_s" in p
         else "– (no preview under 1 MP)", "≤ 0.5 s"),
        ("first tile", f"{p['first tile_s']:.2f} s" if "first tile_s" in p else "–", ""),
        ("full result", f"{p['result_s']:.1f} s ({p['tiles']} tiles, {p['tile_batches']} "
                        "batches)", ""),
        ("event-loop gaps while segmenting p50 / p99 / max",
         "{p50:.1f} / {p99:.1f} / {max:.1f} ms".format(**p["event_loop_gaps_ms"]), ""),
        ("pan/zoom paint p50 / p99 / max ({n} frames)".format(**f),
         "{p50:.1f} / {p99:.1f} / {max:.1f} ms".format(**f), f"p99 ≤ {FRAME_BUDGET_MS} ms"),
        ("heatmap: first map", f"{hm['first_map_s'] * 1e3:.0f} ms", ""),
        ("heatmap class switch p50 / max ({n})".format(**hm["switch_ms"]),
         "{p50:.0f} / {max:.0f} ms".format(**hm["switch_ms"]), f"≤ {SWITCH_BUDGET_MS:.0f} ms"),
        ("heatmap pan/zoom paint p50 / p99",
         "{p50:.1f} / {p99:.1f} ms".format(**hm["pan_zoom_frames_ms"]), ""),
    ]
    if "painting" in r:
        pt = r["painting"]
        rows.append(("brush: mouse move p50 / p99, paint p99",
                     "{p50:.1f} / {p99:.1f} ms".format(**pt["mouse_move_ms"])
                     + ", {p99:.1f} ms".format(**pt["frames_ms"]), ""))
    rows.append(("peak RSS", f"{r['peak_rss_mb']:.0f} MB", f"≤ {MEMORY_BUDGET_MB:.0f} MB"))
    m = r["machine"]
    lines = [f"{r['size'][0]}x{r['size'][1]}, {r['model']}, {m['cpu']} ({m['cores']} cores), "
             f"load {m['load'][0]:.1f} before / {m['load_after'][0]:.1f} after, {m['date']}",
             "", "| measure | result | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
