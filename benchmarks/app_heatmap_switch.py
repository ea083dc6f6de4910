"""Heatmap class switch at 2048x2048: from choosing a class to the repainted canvas.

A document with a synthetic 21-class prediction (random float16 probabilities) is shown in
the Heatmaps tab of the main window; each switch sets the class, re-renders the colormapped
probability map and repaints the canvas synchronously. Prints a markdown table row.

    python benchmarks/app_heatmap_switch.py --switches 42
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from app_common import machine, percentiles

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

BUDGET_MS = 30.0


def synthetic_prediction(size: int, classes: int, seed: int = 0) -> object:
    """A Prediction of smooth random probabilities (the same output for every variant)."""
    import cv2

    from core.inference import Prediction, VariantOutput

    rng = np.random.default_rng(seed)
    low = rng.random((classes, size // 32, size // 32), dtype=np.float32) * 6
    logits = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_CUBIC) for c in low])
    logits -= logits.max(axis=0, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=0, keepdims=True)
    labels = logits.argmax(axis=0).astype(np.uint8)
    confidence = logits.max(axis=0)
    entropy = np.clip(1.0 - confidence, 0, 1).astype(np.float32)
    out = VariantOutput(logits.astype(np.float16), labels, confidence, entropy)
    outputs = {v: out for v in ("32s", "16s", "8s")}
    return Prediction(outputs, (size, size), "cpu", 0.0)


def main() -> None:
    """Run the benchmark and print the result row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=42)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=21)
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    from app.common.render import probability_image
    from app.shell.main_window import MainWindow
    from app.state.document import ImageDocument
    from core.checkpoint import ModelInfo
    from core.data.palette import VOC_CLASSES
    from core.models.fcn import FCNConfig

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FCN_STUDIO_SETTINGS"] = str(Path(tmp) / "settings.ini")
        window = MainWindow()
        window.resize(1400, 900)
        window.show()
        names = [*VOC_CLASSES, *(f"class{i}" for i in range(21, args.classes))][: args.classes]
        info = ModelInfo(names, FCNConfig(num_classes=args.classes))
        window.state.set_model(info, "synthetic")
        rng = np.random.default_rng(1)
        image = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
        doc = ImageDocument(image, Path(tmp) / "synthetic.png")
        doc.set_prediction("synthetic", synthetic_prediction(args.size, args.classes))
        window.state.set_document(doc)
        window.tabs.setCurrentWidget(window.heatmaps)
        for _ in range(20):
            app.processEvents()
        view = window.heatmaps
        view.canvas.actual_size()  # 100%: the most pixels drawn
        switch_ms, render_ms = [], []
        probs = doc.output("synthetic", "8s").probs
        for k in range(args.switches):
            cls = (k + 2) % args.classes
            t0 = time.perf_counter()
            window.state.set_heatmap(cls=cls)
            view.refresh_now()
            view.canvas.viewport().repaint()
            switch_ms.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            probability_image(probs[cls])
            render_ms.append((time.perf_counter() - t0) * 1e3)
            app.processEvents()
        window.close()
    s, r = percentiles(switch_ms), percentiles(render_ms)
    verdict = "pass" if s["p50"] <= BUDGET_MS else "FAIL"
    print("| benchmark | median | max | budget | result | of which colormapping (median) | "
          "machine |")
    print("|---|---|---|---|---|---|---|")
    print(f"| heatmap class switch, {args.size}², {args.classes} classes ({args.switches} "
          f"switches) | {s['p50']:.1f} ms | {s['max']:.1f} ms | ≤ {BUDGET_MS:.0f} ms | {verdict} |"
          f" {r['p50']:.1f} ms | {machine()} |")


if __name__ == "__main__":
    main()
