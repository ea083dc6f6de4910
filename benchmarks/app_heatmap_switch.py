"""Heatmap class switch at 2048x2048: from choosing a class to the repainted canvas.

A document with a synthetic 21-class prediction (smooth random scores, stored as streaming
stores them: fused maps at stride 8) is shown in the Heatmaps tab of the main window; each
switch sets the class, computes that class's probability from the fused map and the cached
log-normalizer, re-renders the colormapped map and repaints the canvas synchronously. Prints a
markdown table row.

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
    """A Prediction of smooth random scores, stored as streaming stores them: fused maps at
    stride 8 and the bilinear final upsampler (the same output for every variant)."""
    import torch

    from core.inference.tiling import from_fused
    from core.models.upsampling import RegionUpsampler, bilinear_1d

    gen = torch.Generator().manual_seed(seed)
    low = torch.rand(1, classes, size // 32 + 2, size // 32 + 2, generator=gen) * 6
    fused = torch.nn.functional.interpolate(low, size=(size // 8 + 8, size // 8 + 8),
                                            mode="bicubic")[0]
    up = RegionUpsampler(8, 31, bilinear_1d(16))
    return from_fused({v: fused for v in ("32s", "16s", "8s")}, dict.fromkeys(
        ("32s", "16s", "8s"), up), (size, size))


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
    from core.checkpoints.checkpoint import ModelInfo
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
        out = doc.output("synthetic", "8s")
        norm = out.log_normalizer()
        for k in range(args.switches):
            cls = (k + 2) % args.classes
            t0 = time.perf_counter()
            window.state.set_heatmap(cls=cls)
            view.refresh_now()
            view.canvas.viewport().repaint()
            switch_ms.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            probability_image(out.probability(cls, log_normalizer=norm))
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
