"""Exact streaming: bands, starts and column windows give the untiled network's fused maps;
tiles finish in order (the region in view first), memory stays bounded, cancel stops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.checkpoints.checkpoint import ModelInfo
from core.errors import Cancelled
from core.inference import Region, Segmenter
from core.inference.streaming import Stream, StreamGeometry, run_stream, valid_span
from core.inference.tiling import tile_grid, tile_order
from core.models import VARIANTS, fcn_vgg16
from core.models.fcn import FCN
from core.models.upsampling import DeferredUpsampling

pytestmark = pytest.mark.usefixtures("one_thread")


def random_model(num_classes: int = 3, dtype: torch.dtype = torch.float64, seed: int = 0) -> FCN:
    """A tiny FCN with random score layers (so that every skip contributes)."""
    torch.manual_seed(seed)
    model = fcn_vgg16(num_classes=num_classes, width=0.0625).eval().to(dtype)
    with torch.no_grad():
        for name in ("score_fr", "score_pool4", "score_pool3"):
            getattr(model, name).weight.normal_(std=0.5)
            getattr(model, name).bias.normal_()
    return model


@pytest.fixture(scope="module")
def model64() -> FCN:
    return random_model()


def untiled_fused(model: FCN, x: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return model.heads(model.features(x), x.shape[-2:], VARIANTS, DeferredUpsampling(model))


def streamed(model: FCN, x: torch.Tensor, band: int, start: int = 0,
             cols: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
    """The fused maps a stream fills (NaN where it determines nothing)."""
    h, w = x.shape[-2:]
    geo = StreamGeometry(model, h, w)
    c0, c1 = cols or (0, w)
    with torch.no_grad():
        emitted = run_stream(Stream(model, geo, cols=cols), lambda r0, r1: x[:, :, r0:r1, c0:c1],
                             start, band)
    rows, widths = geo.fused(geo.rows), geo.fused(geo.cols)
    out = {v: torch.full((x.shape[0], model.config.num_classes, rows[v], widths[v]), np.nan,
                         dtype=x.dtype) for v in VARIANTS}
    for e in emitted:
        target = out[e.variant][:, :, e.rows[0]:e.rows[1], e.cols[0]:e.cols[1]]
        assert torch.isnan(target).all(), "a stream wrote a cell twice"
        target.copy_(e.scores)
    return out


@pytest.mark.parametrize(("h", "w", "band"), [
    (100, 90, 1000), (100, 90, 7), (333, 217, 32), (333, 217, 45), (257, 161, 64), (64, 300, 33),
])
def test_streams_equal_the_untiled_network(model64: FCN, h: int, w: int, band: int) -> None:
    x = torch.randn(2, 3, h, w, dtype=torch.float64)
    ref, got = untiled_fused(model64, x), streamed(model64, x, band)
    for v in VARIANTS:
        assert not torch.isnan(got[v]).any(), v
        torch.testing.assert_close(got[v], ref[v], rtol=0, atol=1e-10)


@pytest.mark.parametrize(("start", "cols"), [(192, None), (0, (160, 600)), (0, (0, 352)),
                                             (160, (96, 700))])
def test_streams_from_a_row_or_over_columns_are_exact_where_they_reach(
    model64: FCN, start: int, cols: tuple[int, int] | None
) -> None:
    x = torch.randn(1, 3, 500, 700, dtype=torch.float64)
    ref, got = untiled_fused(model64, x), streamed(model64, x, 50, start, cols)
    geo = StreamGeometry(model64, 500, 700)
    first = geo.first_valid(start)
    for v in VARIANTS:
        known = ~torch.isnan(got[v])
        assert known.any()
        torch.testing.assert_close(got[v][known], ref[v][known], rtol=0, atol=1e-10)
        rows = known[0, 0].any(1).nonzero()[:, 0]
        assert int(rows.min()) == first[v] and int(rows.max()) == got[v].shape[2] - 1


def test_start_for_is_the_latest_start_that_reaches_the_rows(model64: FCN) -> None:
    geo = StreamGeometry(model64, 2000, 300)
    needed = {"32s": 30, "16s": 61, "8s": 123}
    start = geo.start_for(needed)
    assert start % 32 == 0 and 0 < start < 1000
    assert all(geo.first_valid(start)[v] <= r for v, r in needed.items())
    assert any(geo.first_valid(start + 32)[v] > r for v, r in needed.items())


def test_valid_span_pads_only_at_the_true_ends() -> None:
    conv, pool = torch.nn.Conv2d(1, 1, 3, padding=1), torch.nn.MaxPool2d(2, 2, ceil_mode=True)
    assert valid_span(conv, 10, (0, 10)) == ((0, 10), (0, 10), (1, 1))
    assert valid_span(conv, 10, (3, 8)) == ((4, 7), (3, 8), (0, 0))
    assert valid_span(pool, 11, (0, 11)) == ((0, 6), (0, 11), (0, 0))  # ceil mode at the end
    assert valid_span(pool, 11, (3, 8)) == ((2, 4), (4, 8), (0, 0))


# --------------------------------------------------------------------------- Segmenter


@pytest.fixture(scope="module")
def seg_model() -> tuple[FCN, ModelInfo]:
    model = random_model(num_classes=4, dtype=torch.float32, seed=1)
    return model, ModelInfo(["a", "b", "c", "d"], model.config)


def untiled_scores(model: FCN, info: ModelInfo, image: np.ndarray) -> dict[str, np.ndarray]:
    x = info.preprocessing(torch.from_numpy(image).permute(2, 0, 1)[None])
    with torch.no_grad():
        return {v: s[0].numpy() for v, s in model(x).items()}


@pytest.mark.parametrize(("h", "w", "band"), [(300, 200, 64), (301, 199, 96), (513, 127, 32),
                                              (97, 450, 1024)])
def test_tiled_prediction_equals_untiled(seg_model, h: int, w: int, band: int) -> None:
    model, info = seg_model
    image = np.random.default_rng(h).integers(0, 256, (h, w, 3), dtype=np.uint8)
    pred = Segmenter(model, info, device="cpu", tile_size=band).predict(image)
    ref = untiled_scores(model, info, image)
    assert pred.tiled == (h > band)
    for v in VARIANTS:
        np.testing.assert_allclose(pred[v].scores(), ref[v], rtol=0, atol=1e-5)
        top2 = np.sort(ref[v], axis=0)[-2:]
        clear = top2[1] - top2[0] > 1e-4
        np.testing.assert_array_equal(pred[v].labels[clear], ref[v].argmax(0)[clear])


def test_tiles_land_in_order_region_first_each_final_when_announced(seg_model) -> None:
    model, info = seg_model
    image = np.random.default_rng(5).integers(0, 256, (700, 160, 3), dtype=np.uint8)
    seg = Segmenter(model, info, device="cpu", tile_size=64)
    first = Region(400, 20, 470, 100)
    seen: list[tuple[Region, np.ndarray]] = []
    pred = seg.predict(image, first=first,
                       on_tile=lambda p, t: seen.append((t, p["8s"].labels[t.slices()].copy())))
    tiles = [t for t, _ in seen]
    assert tiles == pred.finished and sorted(tiles, key=lambda t: t.top) == tile_grid(
        (700, 160), 64)
    assert tiles[:2] == [Region(384, 0, 448, 160), Region(448, 0, 512, 160)]  # meet the region
    assert [t.top for t in tiles[2:5]] == [512, 576, 640] and tiles[5].top == 0  # below, above
    for tile, labels in seen:  # what was shown is what stays
        np.testing.assert_array_equal(labels, pred["8s"].labels[tile.slices()])
    whole = Segmenter(model, info, device="cpu", tile_size=64).predict(image)
    for v in VARIANTS:
        np.testing.assert_allclose(pred[v].fused, whole[v].fused, rtol=0, atol=1e-5)


def test_tile_order() -> None:
    tiles = tile_grid((300, 50), 64)
    assert [t.top for t in tiles] == [0, 64, 128, 192, 256] and tiles[-1].bottom == 300
    assert [t.top for t in tile_order(tiles, Region(130, 0, 140, 50))] == [128, 192, 256, 0, 64]
    assert tile_order(tiles, None) == tiles
    assert tile_grid((90, 50), 1024) == [Region(0, 0, 90, 50)]


def test_cancel_stops_between_bands_keeping_finished_tiles(seg_model) -> None:
    model, info = seg_model
    seg = Segmenter(model, info, device="cpu", tile_size=64)
    image = np.random.default_rng(2).integers(0, 256, (1600, 96, 3), dtype=np.uint8)
    with pytest.raises(Cancelled):
        seg.predict(image, cancel=lambda: True)
    polls: list[int] = []
    tiles: list[Region] = []

    def cancel() -> bool:
        polls.append(len(tiles))
        return len(tiles) >= 2

    with pytest.raises(Cancelled):
        seg.predict(image, cancel=cancel, on_tile=lambda p, t: tiles.append(t))
    assert polls[-1] == len(tiles) >= 2  # no band ran after the cancel
    assert polls[-2] < 2 and len(polls) < 1600 // 64 and len(tiles) < 25


def test_memory_stays_bounded_as_images_grow(seg_model, monkeypatch) -> None:
    """The stream's buffers (layer rings and taps) do not grow with the image height, and a
    prediction stores 3 bytes per pixel and variant plus fused maps 1/64 of the image."""
    model, info = seg_model
    peaks: list[int] = []
    real = Stream.feed

    def feed(self, rows):
        out = real(self, rows)
        held = sum(s.ring.numel() * s.ring.element_size() for s in self.stages
                   if s.ring is not None)
        held += sum(t.numel() * t.element_size() for t, _ in self.taps.values())
        peaks[-1] = max(peaks[-1], held)
        return out

    monkeypatch.setattr(Stream, "feed", feed)
    seg = Segmenter(model, info, device="cpu", tile_size=64)
    for h in (1280, 2560):
        peaks.append(0)
        image = np.zeros((h, 120, 3), dtype=np.uint8)
        pred = seg.predict(image)
        stored = pred.nbytes
        pixels = h * 120
        assert stored <= 3 * pixels * 3 + 3 * 4 * 4 * (h // 8 + 8) * (120 // 8 + 8)
    assert peaks[1] <= peaks[0] * 1.05, peaks


def test_wide_images_stream_in_bands_of_the_measured_area_on_a_cpu(seg_model, monkeypatch) -> None:
    """The band height measured at 1024 px is scaled to keep its area on wider images
    (a CPU's caches hold a band's activations whatever its shape)."""
    import core.inference.runner as runner
    from core.inference.runner import cpu_band_for_width

    assert cpu_band_for_width(256, 1024) == 256
    assert cpu_band_for_width(256, 800) == 256
    assert cpu_band_for_width(256, 4000) == 64
    assert cpu_band_for_width(256, 2048) == 128
    assert cpu_band_for_width(32, 10000) == 32  # never under 32 rows
    measured: list[int] = []

    def choose(key, measure, candidates, cap):
        measured.append(cap)
        return 256

    monkeypatch.setattr(runner, "choose_band", choose)
    model, info = seg_model
    seg = Segmenter(model, info, device="cpu")
    assert seg.runner.band(3000, 4000, torch.device("cpu")) == 64
    assert seg.runner.band(3000, 1000, torch.device("cpu")) == 256
    assert len(measured) == 2
