"""The Streams tab: each skip stream's term as a map, what each skip changed, and a clicked
pixel's logits split by stream (bars and numbers), for FCN-16s and FCN-8s."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.common.render import ImageBuffer
from app.features.insight.bars import BreakdownChart
from app.features.insight.render import changed_image, logit_image, symmetric_limit
from app.features.insight.results import ClassMaps, PixelResult, StreamsResult
from app.features.insight.tiles import TILE, TileGrid, set_note

STREAMS = {"16s": ("score_fr", "score_pool4"), "8s": ("score_fr", "score_pool4", "score_pool3")}
TERM_TIPS = {
    "score_fr": "The score_fr term: fc7's scores (stride 32) carried through the upsamplers",
    "score_pool4": "The score_pool4 term: pool4's scores (stride 16) through the upsamplers "
                   "after the pool4 skip",
    "score_pool3": "The score_pool3 term: pool3's scores (stride 8) through upscore8",
}
SKIPS = {"pool4": ("32s", "16s"), "pool3": ("16s", "8s")}
NUMBER = "{:+.4f}"
"""How the breakdown's numbers are written."""


def columns() -> list[tuple[str, str, str]]:
    """The breakdown table's columns: ``(variant, what, header)``; what is a stream, "sum"
    or "output"."""
    cols = []
    for v, streams in STREAMS.items():
        cols += [(v, s, f"{v}: {s}") for s in streams]
        cols += [(v, "sum", f"{v}: Σ terms"), (v, "output", f"{v}: output")]
    return cols


class StreamsTab(QWidget):
    """Shows a :class:`StreamsResult`, a class's :class:`ClassMaps` and a :class:`PixelResult`.

    Signals:
        classChosen(int): the class whose maps to show.
        mapChosen(str): a tile was clicked: show its map on the viewer ('' : none).
    """

    classChosen = Signal(int)
    mapChosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        """Empty until a result arrives."""
        super().__init__(parent)
        self.names: list[str] = []
        self.colors: list[tuple[int, int, int]] = []
        self.result: StreamsResult | None = None
        self.maps: ClassMaps | None = None
        self.pixel: PixelResult | None = None
        self._sources: dict[str, tuple[tuple[np.ndarray, ...], Callable[..., ImageBuffer]]] = {}
        self._buffers: dict[str, tuple[np.ndarray, ImageBuffer]] = {}
        self.class_box = QComboBox(self)
        self.class_box.setToolTip("The class whose logit maps are shown")
        self.variant_group = QButtonGroup(self)
        self.variant_buttons = {}
        top = QHBoxLayout()
        top.addWidget(QLabel("Class", self))
        top.addWidget(self.class_box, 1)
        for v in STREAMS:
            button = QRadioButton(f"FCN-{v}", self)
            self.variant_group.addButton(button)
            self.variant_buttons[v] = button
            top.addWidget(button)
        self.variant_buttons["8s"].setChecked(True)
        self.grid = TileGrid(4, self)
        self.summary = QLabel("", self)
        self.summary.setWordWrap(True)
        self.note = QLabel("", self)
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #c08000;")
        self.pixel_label = QLabel("Click a pixel of the viewer to split every class's logit "
                                  "there by stream.", self)
        self.pixel_label.setWordWrap(True)
        self.chart = BreakdownChart(self)
        cols = columns()
        self.table = QTableWidget(0, len(cols), self)
        self.table.setHorizontalHeaderLabels([c[2] for c in cols])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setMinimumHeight(120)
        self.residual_label = QLabel("", self)
        self.residual_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.note)
        layout.addWidget(self.grid)
        layout.addWidget(self.summary)
        layout.addWidget(self.pixel_label)
        layout.addWidget(self.chart)
        layout.addWidget(self.table)
        layout.addWidget(self.residual_label)
        layout.addStretch(1)
        self.class_box.activated.connect(lambda i: self.classChosen.emit(int(i)))
        self.variant_group.buttonClicked.connect(lambda _b: self._variant_changed())
        self.grid.clicked.connect(self._on_tile)
        self._build_tiles()
        set_note(self.note, "")

    # ------------------------------------------------------------------ inputs
    @property
    def variant(self) -> str:
        """The variant whose terms the tiles show."""
        return next(v for v, b in self.variant_buttons.items() if b.isChecked())

    @property
    def cls(self) -> int:
        """The class shown."""
        return max(0, self.class_box.currentIndex())

    def set_classes(self, names: Sequence[str], colors: Sequence[tuple[int, int, int]]) -> None:
        """The model's classes (the chooser keeps its class when it still exists)."""
        keep = self.cls
        self.names, self.colors = list(names), [tuple(c) for c in colors]
        self.class_box.clear()
        self.class_box.addItems(self.names)
        default = 1 if len(self.names) > 1 else 0
        self.class_box.setCurrentIndex(keep if 0 < keep < len(self.names) else default)

    def clear(self, text: str = "") -> None:
        """Forget the shown results; ``text`` says why."""
        self.result, self.maps, self.pixel = None, None, None
        self._sources, self._buffers = {}, {}
        for tile in self.grid.tiles.values():
            tile.set_image(None, "")
        self.summary.setText(text)
        set_note(self.note, "")
        self.show_pixel(None)

    def show_streams(self, result: StreamsResult) -> None:
        """A new decomposition (with its class's maps)."""
        self.result = result
        r = result.residuals
        self.summary.setText(
            "Each output is the sum of one term per score layer (the deconvolutions are "
            "linear and bias-free): max |Σ terms − output| over the image is "
            + ", ".join(f"{v} {r[v]:.1e}" for v in ("16s", "8s") if v in r)
            + " (float rounding). Click a map to show it on the viewer.")
        set_note(self.note, result.scale.note())
        self.show_maps(result.maps)

    def show_maps(self, maps: ClassMaps) -> None:
        """A class's maps."""
        self.maps = maps
        if 0 <= maps.cls < self.class_box.count():
            self.class_box.setCurrentIndex(maps.cls)
        self._sources = {}
        self._fill_tiles()

    def show_pixel(self, pixel: PixelResult | None, at: tuple[int, int] | None = None) -> None:
        """A pixel's breakdown (None: none); ``at`` = the image pixel ``(x, y)`` clicked."""
        self.pixel = pixel
        self.chart.set_breakdown(pixel, self.names)
        self.table.setRowCount(0)
        if pixel is None:
            self.residual_label.setText("")
            return
        where = f"({at[0]}, {at[1]})" if at is not None else f"({pixel.x}, {pixel.y})"
        scale = self.result.scale if self.result is not None else None
        copy = (f", pixel ({pixel.x}, {pixel.y}) of the analysed copy"
                if scale is not None and scale.downscaled else "")
        says = ", ".join(f"FCN-{v} says {self._name(pixel.labels[v])}"
                         for v in STREAMS if v in pixel.labels)
        self.pixel_label.setText(f"Pixel {where}{copy}: {says}.")
        cols = columns()
        n = len(pixel.totals["8s"])
        self.table.setRowCount(n)
        self.table.setVerticalHeaderLabels([self._name(c) for c in range(n)])
        for c in range(n):
            for k, (v, what, _) in enumerate(cols):
                if what == "sum":
                    value = float(np.sum([t[c] for t in pixel.terms[v].values()],
                                         dtype=np.float64))
                elif what == "output":
                    value = float(pixel.totals[v][c])
                else:
                    value = float(pixel.terms[v][what][c])
                item = QTableWidgetItem(NUMBER.format(value))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(c, k, item)
        table = self.table
        table.resizeRowsToContents()
        table.setFixedHeight(table.horizontalHeader().height() + table.verticalHeader().length()
                             + table.horizontalScrollBar().sizeHint().height() + 6)
        self.residual_label.setText(
            "At this pixel, max |Σ terms − output| over the classes: "
            + ", ".join(f"{v} {pixel.residual(v):.1e}" for v in STREAMS)
            + ": the streams' terms add up to the output exactly, up to float rounding.")

    def table_values(self) -> dict[str, dict[str, list[float]]]:
        """The numbers the table shows: ``{variant: {stream | "sum" | "output": [per class]}}``."""
        out: dict[str, dict[str, list[float]]] = {}
        for k, (v, what, _) in enumerate(columns()):
            out.setdefault(v, {})[what] = [float(self.table.item(r, k).text())
                                           for r in range(self.table.rowCount())]
        return out

    # ------------------------------------------------------------------ maps
    def map_buffer(self, key: str) -> tuple[ImageBuffer, str] | None:
        """The full-size image of tile ``key`` and what it shows (None: no data yet)."""
        tile = self.grid.tiles.get(key)
        source = self._sources.get(key)
        if tile is None or source is None:
            return None
        arrays, render = source
        kept = self._buffers.get(key)
        if kept is None or kept[0] is not arrays[0]:
            kept = self._buffers[key] = (arrays[0], render(*arrays))
        buffer = kept[1]
        if key.startswith("changed:"):
            return buffer, f"{tile.title.text()} (all classes)"
        name = self._name(self.maps.cls) if self.maps is not None else ""
        return buffer, f"{tile.title.text()} ({name}, FCN-{self.variant})"

    def _name(self, c: int) -> str:
        return self.names[c] if 0 <= c < len(self.names) else f"#{c}"

    def _variant_changed(self) -> None:
        self._build_tiles()
        self._sources = {}
        self._fill_tiles()
        selected = self.grid.selected()
        self.mapChosen.emit(selected or "")

    def _build_tiles(self) -> None:
        v = self.variant
        entries = [(f"term:{s}", s, TERM_TIPS[s]) for s in STREAMS[v]]
        entries.append(("output", f"= {v} output",
                        f"FCN-{v}'s output: the sum of the terms before it"))
        for skip, (coarse, fine) in SKIPS.items():
            entries.append((f"changed:{skip}", f"{skip}: changed",
                            f"What the {skip} skip changed over FCN-{coarse}: the pixels whose "
                            f"class changed, in FCN-{fine}'s class colors; elsewhere gray by "
                            "how much the scores moved"))
            entries.append((f"delta:{skip}", f"{skip}: Δ class",
                            f"The chosen class's score in FCN-{fine} minus FCN-{coarse}"))
        selected = self.grid.selected()
        self.grid.set_tiles(entries)
        self.grid.select(selected if selected in self.grid.tiles else None)

    def _fill_tiles(self) -> None:
        maps, v = self.maps, self.variant
        if maps is None or v not in maps.terms:
            return
        name = self._name(maps.cls)
        terms = maps.terms[v]
        limit = symmetric_limit(*terms.values(), maps.outputs[v])
        for stream, values in terms.items():
            self._put(f"term:{stream}", (values,),
                      lambda a, lim=limit: logit_image(a, lim),
                      f"{values.min():+.2f} … {values.max():+.2f}")
        out = maps.outputs[v]
        self._put("output", (out,), lambda a, lim=limit: logit_image(a, lim),
                  f"{out.min():+.2f} … {out.max():+.2f}")
        for skip in SKIPS:
            delta = maps.deltas.get(skip)
            if delta is not None:
                dlim = symmetric_limit(delta)
                self._put(f"delta:{skip}", (delta,), lambda a, lim=dlim: logit_image(a, lim),
                          f"{delta.min():+.2f} … {delta.max():+.2f}")
                self.grid.tiles[f"delta:{skip}"].title.setText(f"{skip}: Δ {name}")
            summary = self.result.skips.get(skip) if self.result is not None else None
            if summary is not None:
                peak = float(summary.magnitude.max()) if summary.magnitude.size else 0.0
                self._put(f"changed:{skip}",
                          (summary.changed, summary.after, summary.magnitude),
                          lambda c, a, m, p=peak: changed_image(c, a, m, self.colors, p),
                          f"{summary.fraction:.1%} of the pixels changed class")

    def _put(self, key: str, arrays: tuple[np.ndarray, ...],
             render: Callable[..., ImageBuffer], caption: str) -> None:
        """Show a thumbnail of ``render(*arrays)`` in tile ``key`` (the maps subsampled);
        the full-size image is rendered only when the map goes on the viewer
        (:meth:`map_buffer`)."""
        self._sources[key] = (arrays, render)
        step = max(1, -(-max(arrays[0].shape[:2]) // (2 * TILE)))
        tile = self.grid.tiles.get(key)
        if tile is not None:
            small = [np.ascontiguousarray(a[::step, ::step]) for a in arrays]
            tile.set_image(render(*small), caption)

    def _on_tile(self, key: str, _fx: float, _fy: float) -> None:
        chosen = None if self.grid.selected() == key else key
        self.grid.select(chosen)
        self.mapChosen.emit(chosen or "")
