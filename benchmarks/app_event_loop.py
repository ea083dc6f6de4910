"""Event-loop stalls of the GUI thread while the worker thread segments an image.

A 5 ms QTimer heartbeat runs in the main window's event loop while the inference worker
segments a 1024x1024 image (the default model if present, else a compact FCN); the gaps
between heartbeats are the event loop's responsiveness. The window also draws the results
when they arrive, which is counted. Prints a markdown table row (p50/p99/max gap).

    python benchmarks/app_event_loop.py --runs 3
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from app_common import machine, model_for_benchmark, percentiles

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

BUDGET_MS = 30.0
PERIOD_MS = 5


def main() -> None:
    """Run the benchmark and print the result row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--width", type=float, default=0.25,
                        help="width of the compact model used when there is no default model")
    args = parser.parse_args()
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from app.shell.main_window import MainWindow
    from core.data.imageio import write_image

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model, model_text = model_for_benchmark(tmp_path, args.width)
        image = tmp_path / "image.png"
        rng = np.random.default_rng(0)
        write_image(image, rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8))
        os.environ["FCN_STUDIO_SETTINGS"] = str(tmp_path / "settings.ini")
        window = MainWindow()
        window.actions.autorun.setChecked(False)
        window.resize(1400, 900)
        window.show()
        window.start([image], str(model))
        deadline = time.monotonic() + 600
        while window.controller.model is None or window.state.document is None:
            app.processEvents()
            if time.monotonic() > deadline:
                raise RuntimeError("the model did not load")
            time.sleep(0.01)

        clock = QElapsedTimer()
        ticks: list[float] = []
        beat = QTimer()
        beat.setTimerType(Qt.TimerType.PreciseTimer)
        beat.setInterval(PERIOD_MS)
        beat.timeout.connect(lambda: ticks.append(clock.nsecsElapsed() / 1e6))
        gaps: list[float] = []
        seconds: list[float] = []
        for _ in range(args.runs):
            doc = window.state.document
            doc.predictions.clear()
            done: list[float] = []
            window.controller.resultReady.connect(lambda *_a, d=done: d.append(time.monotonic()))
            ticks.clear()
            clock.start()
            beat.start()
            t0 = time.monotonic()
            window.run_current()
            while not done:
                app.processEvents()  # what app.exec() does; blocks until an event arrives
            end = time.monotonic() + 0.3  # let the views draw the result
            while time.monotonic() < end:
                app.processEvents()
            beat.stop()
            seconds.append(done[0] - t0)
            gaps += list(np.diff(ticks))
        window.close()
    s = percentiles(gaps)
    verdict = "pass" if s["p99"] <= BUDGET_MS else "FAIL"
    print("| benchmark | p50 | p99 | max | budget (p99) | result | inference | model | machine |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| event-loop gaps, {PERIOD_MS} ms heartbeat, {args.size}² image ({s['n']} gaps, "
          f"{args.runs} runs) | {s['p50']:.1f} ms | {s['p99']:.1f} ms | {s['max']:.1f} ms | "
          f"≤ {BUDGET_MS:.0f} ms | {verdict} | {np.median(seconds):.2f} s | {model_text} | "
          f"{machine()} |")


if __name__ == "__main__":
    main()
