"""Image and mask files: Unicode paths, conversions, bad files, atomic writes."""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from core.data import imageio
from core.data.imageio import (
    check_mask,
    image_size,
    read_image,
    read_mask,
    write_image,
    write_mask,
)
from core.data.palette import VOC_PALETTE
from core.errors import FCNStudioError, ImageReadError, MaskError
from tests.conftest import break_image_writes

UNICODE_NAME = "ünïcødé 图像.png"


def _rgb(h: int = 12, w: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _encode(arr: np.ndarray, ext: str = ".png") -> bytes:
    ok, buf = cv2.imencode(ext, arr)
    assert ok
    return buf.tobytes()


def _only_file(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- images


def test_png_round_trip_unicode_path(tmp_path: Path) -> None:
    rgb = _rgb()
    path = tmp_path / "dïr 目录" / UNICODE_NAME
    write_image(path, rgb)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (12, 16, 3)
    np.testing.assert_array_equal(out, rgb)  # lossless and RGB, not BGR
    assert image_size(path) == (16, 12)
    assert _only_file(path.parent) == [UNICODE_NAME]


def test_jpeg_round_trip_is_close(tmp_path: Path) -> None:
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:, :, 0] = 200  # flat red: JPEG keeps it almost exactly
    path = tmp_path / "photo.jpg"
    write_image(path, rgb, quality=95)
    out = read_image(path)
    assert np.abs(out.astype(int) - rgb).max() <= 3


def test_grayscale_becomes_three_channels(tmp_path: Path) -> None:
    gray = np.arange(60, dtype=np.uint8).reshape(6, 10)
    path = tmp_path / "gray.png"
    path.write_bytes(_encode(gray))
    out = read_image(path)
    assert out.shape == (6, 10, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)


def test_16bit_gray_and_color_scaled_by_257(tmp_path: Path) -> None:
    values = np.array([[0, 257, 257 * 100], [257 * 200, 65535, 257 * 7]], np.uint16)
    (tmp_path / "g16.png").write_bytes(_encode(values))
    out = read_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(out[:, :, 1], [[0, 1, 100], [200, 255, 7]])

    bgr16 = np.stack([values, values // 2, np.full_like(values, 257 * 9)], axis=2)
    (tmp_path / "c16.png").write_bytes(_encode(bgr16))
    out = read_image(tmp_path / "c16.png")
    np.testing.assert_array_equal(out[:, :, 2], [[0, 1, 100], [200, 255, 7]])  # R = B plane
    np.testing.assert_array_equal(out[:, :, 0], np.full((2, 3), 9))


def test_alpha_is_composited_over_white(tmp_path: Path) -> None:
    bgra = np.zeros((1, 3, 4), np.uint8)
    bgra[0, :, 2] = 100  # red 100, green and blue 0
    bgra[0, :, 3] = [0, 255, 51]  # transparent, opaque, alpha 0.2
    (tmp_path / "a.png").write_bytes(_encode(bgra))
    out = read_image(tmp_path / "a.png")
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [100, 0, 0]
    # 0.2 * 100 + 0.8 * 255 = 224, 0.2 * 0 + 0.8 * 255 = 204
    assert out[0, 2].tolist() == [224, 204, 204]


def test_gray_plus_alpha(tmp_path: Path) -> None:
    la = np.zeros((1, 2, 2), np.uint8)
    la[0, :, 0] = 40
    la[0, :, 1] = [255, 0]
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    out = read_image(tmp_path / "la.png")
    assert out[0].tolist() == [[40, 40, 40], [255, 255, 255]]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_exif_orientation_matches_pil(tmp_path: Path, orientation: int) -> None:
    block = np.kron(np.arange(6, dtype=np.uint8).reshape(2, 3) * 40, np.ones((8, 8), np.uint8))
    rgb = np.stack([block, 255 - block, block // 2], axis=2)  # 16 x 24, blocky
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    Image.fromarray(rgb).save(path, format="JPEG", quality=100, exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    out = read_image(path)
    assert out.shape == expected.shape
    assert np.abs(out.astype(int) - expected).max() <= 4
    assert image_size(path) == (out.shape[1], out.shape[0])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="does not exist") as err:
        read_image(tmp_path / "nope.png")
    assert "nope.png" in str(err.value)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        read_image(tmp_path / "empty.png")


def test_folder_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, np.uint8).tobytes())
    with pytest.raises(ImageReadError, match=r"corrupt\.jpg"):
        read_image(path)


def test_unsupported_format(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, not an image")
    with pytest.raises(ImageReadError, match="unsupported format"):
        read_image(path)


def test_truncated_png(tmp_path: Path) -> None:
    data = _encode(_rgb(64, 64))
    path = tmp_path / "truncated.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"truncated\.png"):
        read_image(path)


def test_too_many_pixels_checked_from_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.png"
    write_image(path, _rgb(20, 30))

    def no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("the image must be refused before decoding")

    monkeypatch.setattr(imageio.cv2, "imdecode", no_decode)
    with pytest.raises(ImageReadError, match="600 pixels") as err:
        read_image(path, max_pixels=100)
    assert "big.png" in str(err.value) and "30x20" in str(err.value)


def test_image_size_reads_header_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / UNICODE_NAME
    write_image(path, _rgb(7, 9))
    monkeypatch.setattr(imageio.cv2, "imdecode", None)
    assert image_size(path) == (9, 7)


def test_write_image_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(FCNStudioError, match="unsupported format"):
        write_image(tmp_path / "x.nosuchformat", _rgb())
    assert list(tmp_path.iterdir()) == []


def test_write_image_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / UNICODE_NAME
    old = _rgb(seed=1)
    write_image(path, old)
    before = path.read_bytes()

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(FCNStudioError, match="disk full"):
        write_image(path, _rgb(seed=2))
    assert path.read_bytes() == before
    assert _only_file(tmp_path) == [UNICODE_NAME]


# --------------------------------------------------------------------------- masks


def test_palette_mask_round_trip(tmp_path: Path) -> None:
    mask = np.array([[0, 1, 2], [15, 20, 255]], np.uint8)
    path = tmp_path / UNICODE_NAME
    write_mask(path, mask)
    with Image.open(path) as im:
        assert im.mode == "P"
        pal = np.array(im.getpalette()[:768], np.uint8).reshape(-1, 3)
    np.testing.assert_array_equal(pal, VOC_PALETTE)
    out = read_mask(path)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, mask)
    # OpenCV would expand the palette to colors; we must get indices back.
    assert read_image(path)[0, 1].tolist() == VOC_PALETTE[1].tolist()


def test_write_mask_accepts_wider_int_and_bool(tmp_path: Path) -> None:
    write_mask(tmp_path / "m.png", np.array([[0, 3], [255, 1]], np.int64))
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), [[0, 3], [255, 1]])
    write_mask(tmp_path / "b.png", np.array([[True, False]]))
    np.testing.assert_array_equal(read_mask(tmp_path / "b.png"), [[1, 0]])


def test_gray_mask_gives_values(tmp_path: Path) -> None:
    mask = np.array([[0, 4], [7, 255]], np.uint8)
    Image.fromarray(mask).save(tmp_path / "l.png")  # mode "L"
    np.testing.assert_array_equal(read_mask(tmp_path / "l.png"), mask)


def test_rgb_mask_mapped_through_voc_palette(tmp_path: Path) -> None:
    labels = np.array([[0, 1, 15], [255, 20, 0]], np.uint8)
    Image.fromarray(VOC_PALETTE[labels]).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "rgb.png"), labels)


def test_rgb_mask_with_foreign_color(tmp_path: Path) -> None:
    rgb = VOC_PALETTE[np.zeros((2, 2), np.uint8)].copy()
    rgb[1, 1] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "bad.png")
    with pytest.raises(MaskError, match=r"RGB\(1, 2, 3\)") as err:
        read_mask(tmp_path / "bad.png")
    assert "bad.png" in str(err.value)


def test_gray_rgb_mask_gives_values(tmp_path: Path) -> None:
    values = np.array([[0, 1], [2, 3]], np.uint8)
    Image.fromarray(np.repeat(values[:, :, None], 3, axis=2)).save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "g.png"), values)


def test_bad_mask_files(tmp_path: Path) -> None:
    with pytest.raises(MaskError, match="does not exist"):
        read_mask(tmp_path / "missing.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(MaskError, match="empty"):
        read_mask(tmp_path / "empty.png")
    (tmp_path / "junk.png").write_bytes(b"\x00\x01junk" * 100)
    with pytest.raises(MaskError, match=r"junk\.png"):
        read_mask(tmp_path / "junk.png")
    buf = io.BytesIO()
    Image.fromarray(np.zeros((64, 64), np.uint8) + np.arange(64, dtype=np.uint8)).save(
        buf, format="PNG"
    )
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(MaskError, match=r"cut\.png"):
        read_mask(tmp_path / "cut.png")


def test_write_mask_validates(tmp_path: Path) -> None:
    with pytest.raises(MaskError, match="integers"):
        write_mask(tmp_path / "f.png", np.zeros((2, 2), np.float32))
    with pytest.raises(MaskError, match="H x W"):
        write_mask(tmp_path / "3d.png", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(MaskError, match=r"0\.\.255"):
        write_mask(tmp_path / "big.png", np.array([[0, 300]]))
    with pytest.raises(MaskError, match=r"\.png"):
        write_mask(tmp_path / "m.jpg", np.zeros((2, 2), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_write_mask_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mask.png"
    write_mask(path, np.zeros((4, 4), np.uint8))
    before = path.read_bytes()
    break_image_writes(monkeypatch, "crashed midway")
    with pytest.raises(MaskError, match="crashed midway"):
        write_mask(path, np.ones((4, 4), np.uint8))
    assert path.read_bytes() == before
    assert _only_file(tmp_path) == ["mask.png"]


def test_check_mask() -> None:
    mask = np.array([[0, 1, 255]], np.uint8)
    check_mask(mask, (1, 3, 3), 2)
    with pytest.raises(MaskError, match=r"3x1 pixels but its image is 4x1") as err:
        check_mask(mask, (1, 4), 2, path="m.png")
    assert "m.png" in str(err.value)
    with pytest.raises(MaskError, match=r"labels outside 0\.\.1 and 255 \(void\): 5, 7"):
        check_mask(np.array([[0, 5, 7, 255]], np.uint8), (1, 4), 2)
