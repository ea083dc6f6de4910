"""Running one model's predictions as exact streams (the model side of a Segmenter).

A :class:`StreamRunner` keeps what every prediction of a model reuses (an fp16 copy of the
trunk on CUDA, the final upsamplers), chooses the band height (:mod:`core.inference.tuning`)
and runs equal-size images through :class:`~core.inference.streaming.Stream` s into
:class:`~core.inference.results.Prediction` s, tile by tile (:mod:`core.inference.tiling`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from core.checkpoints.checkpoint import ModelInfo
from core.errors import Cancelled
from core.inference.results import Prediction, Region, VariantOutput
from core.inference.runtime.backend import WeightsWatch
from core.inference.runtime.heap import TRIMMER
from core.inference.streaming import Emitted, Stream, StreamGeometry
from core.inference.tiling import Assembler, TileFn, tile_grid, tile_order
from core.inference.tuning import (
    CPU_BANDS,
    GPU_BANDS,
    MEASURE_WIDTH,
    band_cap,
    choose_band,
    tuning_key,
)
from core.models.upsampling import RegionUpsampler
from core.variants import VARIANTS

__all__ = ["SINGLE_BAND_ROWS", "StreamRunner", "cpu_band_for_width"]

SINGLE_BAND_ROWS = 512
"""Images this short run as one band (nothing to measure)."""


def cpu_band_for_width(band: int, width: int) -> int:
    """The CPU band height for a ``width``-pixel-wide image from ``band``, the fastest
    height measured at :data:`MEASURE_WIDTH`: the same band area (rows x width), in steps
    of 32 rows, at least 32.

    On a CPU what makes a band fast is its activations' size against the caches, so a
    wide image wants proportionally fewer rows: on a 4000x3000 photo with the bundled
    architecture (21 classes) bands of 64 rows took 1.33 s and peaked at 0.98 GB resident
    where the 256 rows measured best at 1024 px took 1.61 s and 1.27 GB
    (docs/benchmarks.md, "Large images").
    """
    if width <= MEASURE_WIDTH:
        return band
    return max(32, band * MEASURE_WIDTH // width // 32 * 32)


CancelFn = Callable[[], bool]


class StreamRunner:
    """Streams images through one model (see the module docstring).

    Args:
        model: The FCN, in eval mode, on its device.
        info: Its metadata (the input preprocessing).
        eager: Stream the layers as they are (NCHW, fp32) rather than channels_last (fp16
            trunk on CUDA).
        tile_size: Rows per band (None: measured).
        memory_budget: Bytes a band's activations may take (None: see
            :func:`~core.inference.tuning.band_cap`).
    """

    def __init__(self, model: nn.Module, info: ModelInfo, *, eager: bool = False,
                 tile_size: int | None = None, memory_budget: int | None = None) -> None:
        self.model, self.info, self.eager = model, info, eager
        self.tile_size, self.memory_budget = tile_size, memory_budget
        if not eager:
            model.to(memory_format=torch.channels_last)
        self._watch = WeightsWatch(model)
        self._trunks: dict[str, list[nn.Module]] = {}
        self._upsamplers: dict[str, RegionUpsampler] = {}

    def description(self, device: torch.device) -> str:
        """How it runs, e.g. "streamed bands (fp32, channels_last)"."""
        dtype = "fp16 trunk" if self.dtype(device) == torch.float16 else "fp32"
        band = f", {self.tile_size}-row bands" if self.tile_size else ""
        return f"streamed bands ({dtype}, {'NCHW' if self.eager else 'channels_last'}{band})"

    def dtype(self, device: torch.device) -> torch.dtype:
        """The trunk's dtype on ``device`` (the heads always run in float32)."""
        return torch.float16 if device.type == "cuda" and not self.eager else torch.float32

    # ------------------------------------------------------------------ model state

    def _refresh(self) -> None:
        """Forget derived weights (trunk copies, upsamplers) when the model's changed."""
        if self._watch.changed():
            self._trunks.clear()
            self._upsamplers.clear()

    def trunk(self, device: torch.device) -> list[nn.Module] | None:
        """The trunk layers to stream: None (the model's own) or an fp16 copy on CUDA."""
        dtype = self.dtype(device)
        if dtype == torch.float32:
            return None
        key = f"{device}-{dtype}"
        if key not in self._trunks:
            layers = [copy.deepcopy(getattr(self.model, n)) for n in self.model._trunk]
            self._trunks = {key: [m.to(device, dtype).to(memory_format=torch.channels_last)
                                  for m in layers]}
        return self._trunks[key]

    def upsampler(self, variant: str) -> RegionUpsampler:
        """``variant``'s final upsampler (bilinear filter, or the learned kernel)."""
        if variant not in self._upsamplers:
            self._upsamplers[variant] = RegionUpsampler.from_model(self.model, variant)
        return self._upsamplers[variant]

    # ------------------------------------------------------------------ band height

    def bytes_per_row(self, width: int, device: torch.device) -> int:
        """Bytes of activations per input row of a band (its full-resolution layers)."""
        first = self.model.conv1_1
        elem = torch.finfo(self.dtype(device)).bits // 8
        return 4 * first.out_channels * (width + 2 * first.padding[1]) * elem

    def band(self, height: int, width: int, device: torch.device) -> int:
        """Rows per band for ``height x width`` images on ``device``."""
        cap = band_cap(self.bytes_per_row(width, device), device, self.memory_budget)
        if self.tile_size is not None:
            return min(self.tile_size, cap)
        if height <= min(SINGLE_BAND_ROWS, cap):
            return height
        key = tuning_key(repr(getattr(self.model, "config", type(self.model).__name__)),
                         device, width, self.dtype(device))
        candidates = GPU_BANDS if device.type == "cuda" else CPU_BANDS
        band = choose_band(key, lambda b: self.measure(b, min(width, MEASURE_WIDTH), device),
                           candidates, cap)
        return cpu_band_for_width(band, width) if device.type == "cpu" else band

    def measure(self, band: int, width: int, device: torch.device) -> float:
        """Seconds per pixel of streaming bands of ``band`` rows once the stream is full
        (its first 512 rows fill the layers' pipelines and are not timed)."""
        warm = -(-512 // band) * band
        height = warm + 2 * band
        x = torch.randn(1, 3, height, width, device=device, dtype=self.dtype(device))
        geo = StreamGeometry(self.model, height, width)
        with torch.inference_mode():
            stream = Stream(self.model, geo, VARIANTS, trunk=self.trunk(device), band=band)
            for row in range(0, height, band):
                if row == warm:
                    _sync(device)
                    start = time.perf_counter()
                self.feed(stream, self._layout(x[:, :, row:row + band]))
            _sync(device)
        return (time.perf_counter() - start) / ((height - warm) * width)

    # ------------------------------------------------------------------ running

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.eager else x.contiguous(memory_format=torch.channels_last)

    def feed(self, stream: Stream, rows: torch.Tensor) -> list[Emitted]:
        """Feed a band to a stream (one place for everything a band runs)."""
        return stream.feed(rows)

    def source(self, images: Sequence[np.ndarray], device: torch.device
               ) -> Callable[[int, int], torch.Tensor]:
        """``source(r0, r1)``: image rows ``r0..r1-1`` as the network's input batch."""
        dtype = self.dtype(device)

        def rows(r0: int, r1: int) -> torch.Tensor:
            parts = [torch.from_numpy(img[r0:r1]) for img in images]
            host = parts[0][None] if len(parts) == 1 else torch.stack(parts)
            batch = host.to(device, non_blocking=True).permute(0, 3, 1, 2)
            return self._layout(self.info.preprocessing(batch).to(dtype))

        return rows

    def new_prediction(self, geo: StreamGeometry, variants: Sequence[str],
                       device: torch.device, messages: list[str]) -> Prediction:
        """An empty prediction (zero fused maps and labels) of an image of ``geo``'s size."""
        rows, cols = geo.fused(geo.rows), geo.fused(geo.cols)
        outputs: dict[str, VariantOutput] = {}
        notes = list(messages)
        for v in variants:
            up = self.upsampler(v)
            if up.learned:
                notes.append(f"FCN-{v}'s final upsampling is learned, not bilinear: its kernel "
                             "is kept with the fused score map and applied on demand")
            fused = torch.zeros(self.info.num_classes, rows[v], cols[v])
            outputs[v] = VariantOutput(v, fused, up, (geo.height, geo.width))
        return Prediction(outputs, (geo.height, geo.width), str(device), messages=notes)

    def run(self, images: Sequence[np.ndarray], variants: Sequence[str], device: torch.device,
            band: int, report: Callable[[float], None], cancel: CancelFn | None,
            messages: list[str], on_tile: TileFn | None = None, first: Region | None = None
            ) -> list[Prediction]:
        """Predict equal-size images on ``device`` (where the model is), ``band`` rows at a
        time, the tiles meeting ``first`` first.

        Raises:
            Cancelled: ``cancel()`` returned True before a band.
        """
        start = time.perf_counter()
        self._refresh()
        h, w = images[0].shape[:2]
        geo = StreamGeometry(self.model, h, w)
        preds = [self.new_prediction(geo, variants, device, messages) for _ in images]
        tiles = tile_order(tile_grid((h, w), band), first)
        assemblers = [Assembler(p, tiles, on_tile) for p in preds]
        lead, fed = assemblers[0], 0
        with torch.inference_mode():
            source = self.source(images, device)
            trunk = self.trunk(device)
            while not lead.done:
                row = geo.start_for(lead.needed(lead.pending[0]))
                stream = Stream(self.model, geo, variants, trunk=trunk, band=band)
                stream.start(row)
                while row < h and not lead.done:
                    if cancel is not None and cancel():
                        raise Cancelled("Prediction cancelled")
                    stop = min(h, row + band)
                    emitted = self.feed(stream, source(row, stop))
                    for n, assembler in enumerate(assemblers):
                        assembler.add(emitted, n)
                    row, fed = stop, fed + stop - row
                    report(max(1 - len(lead.pending) / lead.total, min(0.99, fed / h)))
                    TRIMMER.after_call()  # freed band buffers back to the system
        seconds = (time.perf_counter() - start) / len(images)
        for p in preds:
            p.seconds, p.tiled = seconds, len(tiles) > 1
        return preds


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
