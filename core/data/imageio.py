"""Image and mask files: Unicode-safe reading, size limits, palette masks, atomic writes.

Images are always returned as ``H x W x 3`` uint8 **RGB** arrays:

* grayscale images are repeated over three channels;
* 16-bit images (gray or color) are scaled to 8 bits by dividing by 257 (rounded);
* images with an alpha channel (RGBA or gray+alpha) are composited **over white**, so
  transparent regions look like the page they would be shown on, not like black objects;
* JPEG EXIF orientation is applied, as every photo viewer does.

Masks are ``H x W`` uint8 arrays of label indices (255 is the void label). Files are read
from bytes (never by handing a path to OpenCV), so non-ASCII paths work on every platform.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from core.atomic import atomic_path
from core.data.palette import VOC_PALETTE, VOID
from core.errors import FCNStudioError, ImageReadError, MaskError, WriteError
from core.fileio import read_bytes
from core.limits import MAX_PIXELS, check_pixels, decode_pil, open_image_header

DEFAULT_MAX_PIXELS = MAX_PIXELS
"""Images with more pixels than this are refused before they are decoded (core.limits)."""

_EXIF_ORIENTATION = 0x0112

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "check_mask",
    "image_size",
    "read_image",
    "read_mask",
    "write_image",
    "write_mask",
]


# --------------------------------------------------------------------------- helpers


def _read_bytes(path: Path, error: type[FCNStudioError], what: str) -> bytes:
    """Read a whole regular file, turning every failure into ``error`` naming the file."""
    return read_bytes(path, error, what)


def _open_header(data: bytes, path: Path, what: str, error: type[FCNStudioError],
                 max_pixels: int) -> Image.Image | None:
    """Open ``data`` with PIL (header only) under the pixel budget; None: unknown format."""
    return open_image_header(data, path, what, error, max_pixels)


def _exif_orientation(pil: Image.Image | None) -> int:
    """EXIF orientation (1..8) of a JPEG header, 1 when absent or not a JPEG."""
    if pil is None or pil.format not in ("JPEG", "MPO"):
        return 1
    try:
        value = int(pil.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # a broken EXIF block must not make the image unreadable
        return 1
    return value if 1 <= value <= 8 else 1


def _apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation to an ``H x W [x C]`` array (same result as PIL exif_transpose)."""
    axes = (1, 0, 2) if img.ndim == 3 else (1, 0)
    if orientation == 2:
        img = img[:, ::-1]
    elif orientation == 3:
        img = img[::-1, ::-1]
    elif orientation == 4:
        img = img[::-1]
    elif orientation == 5:
        img = img.transpose(axes)
    elif orientation == 6:
        img = np.rot90(img, -1)
    elif orientation == 7:
        img = img.transpose(axes)[::-1, ::-1]
    elif orientation == 8:
        img = np.rot90(img, 1)
    return np.ascontiguousarray(img)


def _to_float255(img: np.ndarray, path: Path) -> np.ndarray:
    """Convert a uint8/uint16 array to float32 in [0, 255]."""
    if img.dtype == np.uint8:
        return img.astype(np.float32)
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 257.0
    raise ImageReadError(f"Cannot read image {path}: unsupported pixel type {img.dtype}")


def _to_rgb8(img: np.ndarray, path: Path, bgr: bool) -> np.ndarray:
    """Turn a decoded ``H x W [x C]`` array (C in 1..4) into ``H x W x 3`` uint8 RGB."""
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise ImageReadError(f"Cannot read image {path}: unsupported layout {img.shape}")
    channels = img.shape[2]
    if img.dtype == np.uint8 and channels in (1, 3):
        if channels == 1:
            return np.ascontiguousarray(np.repeat(img, 3, axis=2))
        return np.ascontiguousarray(img[:, :, ::-1] if bgr else img)
    f = _to_float255(img, path)
    if channels in (2, 4):
        color, alpha = f[:, :, :-1], f[:, :, -1:] / 255.0
        f = color * alpha + 255.0 * (1.0 - alpha)  # composite over white
    if f.shape[2] == 1:
        f = np.repeat(f, 3, axis=2)
    elif bgr:
        f = f[:, :, ::-1]
    return np.ascontiguousarray(np.clip(np.rint(f), 0, 255).astype(np.uint8))


def _decode_with_pil(pil: Image.Image, path: Path) -> np.ndarray:
    """Fallback decoder for formats OpenCV cannot read; returns RGB uint8."""
    decode_pil(pil, path, "image", ImageReadError)
    try:
        if pil.mode in ("I;16", "I;16B", "I;16L"):
            return _to_rgb8(np.asarray(pil).astype(np.uint16), path, bgr=False)
        has_alpha = pil.mode in ("RGBA", "LA", "PA") or (
            pil.mode == "P" and "transparency" in pil.info
        )
        arr = np.asarray(pil.convert("RGBA" if has_alpha else "RGB"))
    except (OSError, ValueError, SyntaxError, MemoryError) as exc:
        raise ImageReadError(f"Cannot read image {path}: the data is corrupt ({exc})") from exc
    return _to_rgb8(arr, path, bgr=False)


# --------------------------------------------------------------------------- images


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Return ``(width, height)`` of an image as :func:`read_image` would return it.

    Only the header is read (EXIF orientation included); formats PIL does not know are
    decoded with OpenCV as a fallback (under OpenCV's own pixel limit, then the budget).

    Raises:
        ImageReadError: The file is missing, empty, not a readable image, or declares more
            pixels than the budget (:data:`core.limits.MAX_PIXELS`).
    """
    path = Path(path)
    data = _read_bytes(path, ImageReadError, "image")
    pil = _open_header(data, path, "image", ImageReadError, DEFAULT_MAX_PIXELS)
    if pil is not None:
        width, height = pil.size
        if _exif_orientation(pil) >= 5:
            width, height = height, width
        return int(width), int(height)
    img = read_image(path)
    return img.shape[1], img.shape[0]


def read_image(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as an ``H x W x 3`` uint8 RGB array.

    Args:
        path: The image file; any Unicode path works.
        max_pixels: Refuse images with more pixels than this (checked from the header
            before decoding when the format allows).

    Returns:
        The image, RGB, uint8, C-contiguous (see the module docstring for conversions).

    Raises:
        ImageReadError: The file is missing, empty, corrupt, of an unsupported format,
            or larger than ``max_pixels``.
    """
    path = Path(path)
    data = _read_bytes(path, ImageReadError, "image")
    pil = _open_header(data, path, "image", ImageReadError, max_pixels)

    try:
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        img = None
    if img is None:
        if pil is None:
            raise ImageReadError(
                f"Cannot read image {path}: not an image, an unsupported format, or corrupt data"
            )
        rgb = _decode_with_pil(pil, path)
    else:
        rgb = _to_rgb8(img, path, bgr=True)
    height, width = rgb.shape[:2]
    check_pixels(width, height, path, "image", ImageReadError, max_pixels)
    return _apply_orientation(rgb, _exif_orientation(pil))


def write_image(path: str | os.PathLike[str], rgb: np.ndarray, quality: int = 95) -> None:
    """Write an RGB (or grayscale) uint8 image atomically; the extension picks the format.

    Args:
        path: Target file (``.png``, ``.jpg``, ``.bmp``, ``.webp``...); Unicode paths work.
        rgb: ``H x W x 3`` RGB or ``H x W`` gray, uint8.
        quality: JPEG/WebP quality, 1..100.

    Raises:
        ValueError: ``rgb`` is not a uint8 gray or RGB array.
        FCNStudioError: The extension is not a format OpenCV can write, or writing failed.
    """
    path = Path(path)
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or not (
        rgb.ndim == 2 or (rgb.ndim == 3 and rgb.shape[2] == 3)
    ):
        raise ValueError(f"write_image needs H x W x 3 or H x W uint8, got {rgb.shape} {rgb.dtype}")
    ext = path.suffix.lower()
    if not ext:
        raise FCNStudioError(
            f"Cannot write image {path}: the name has no extension to pick a format"
        )
    params: list[int] = []
    if ext in (".jpg", ".jpeg", ".jpe"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    elif ext == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, int(quality)]
    bgr = rgb[:, :, ::-1] if rgb.ndim == 3 else rgb
    try:
        ok, buf = cv2.imencode(ext, np.ascontiguousarray(bgr), params)
    except cv2.error as exc:
        raise FCNStudioError(f"Cannot write image {path}: unsupported format {ext!r}") from exc
    if not ok:
        raise FCNStudioError(f"Cannot write image {path}: encoding as {ext!r} failed")
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(buf.tobytes())
    except WriteError as exc:
        raise FCNStudioError(str(exc)) from exc


# --------------------------------------------------------------------------- masks


def _palette_lookup(palette: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted 24-bit color codes of a palette and the label index of each."""
    pal = np.asarray(palette, dtype=np.int64).reshape(-1, 3)[:256]
    codes = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
    # keep the first (lowest) index of a color that appears twice
    uniq, first = np.unique(codes, return_index=True)
    return uniq, first.astype(np.uint8)


def _rgb_to_labels(rgb: np.ndarray, path: Path) -> np.ndarray:
    """Map an RGB color mask to labels through the VOC palette (or gray values)."""
    c = rgb.astype(np.int64)
    codes = (c[:, :, 0] << 16) | (c[:, :, 1] << 8) | c[:, :, 2]
    colors, inverse = np.unique(codes, return_inverse=True)
    pal_codes, pal_index = _palette_lookup(VOC_PALETTE)
    pos = np.clip(np.searchsorted(pal_codes, colors), 0, len(pal_codes) - 1)
    known = pal_codes[pos] == colors
    if known.all():
        return pal_index[pos][inverse.reshape(codes.shape)]
    if (c[:, :, 0] == c[:, :, 1]).all() and (c[:, :, 1] == c[:, :, 2]).all():
        return np.ascontiguousarray(rgb[:, :, 0])  # a label image saved as gray RGB
    bad = int(colors[~known][0])
    example = ((bad >> 16) & 255, (bad >> 8) & 255, bad & 255)
    n_bad = int((~known).sum())
    raise MaskError(
        f"Mask {path} is an RGB image with {n_bad} color(s) that are not in the VOC palette, "
        f"e.g. RGB{example}; save masks as palette (P) or 8-bit gray PNGs of label indices"
    )


def read_mask(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read a label mask as an ``H x W`` uint8 array of class indices (255 = void).

    Palette ("P") images give their palette indices, 8-bit gray gives its values, 16-bit
    gray gives its values when they all fit in 0..255, 1-bit images give 0/1. RGB(A) masks
    are mapped back through the VOC palette (alpha is ignored); an RGB mask whose pixels
    are all gray (R = G = B) but not all palette colors gives its gray values.

    Raises:
        MaskError: The file is missing, empty, corrupt, too large, of an unsupported mode,
            or an RGB mask has colors outside the VOC palette.
    """
    path = Path(path)
    data = _read_bytes(path, MaskError, "mask")
    pil = _open_header(data, path, "mask", MaskError, max_pixels)
    if pil is None:
        raise MaskError(f"Cannot read mask {path}: not an image, an unsupported format, or corrupt")
    decode_pil(pil, path, "mask", MaskError)
    try:
        mode = pil.mode
        if mode in ("P", "L"):
            arr = np.asarray(pil)
        elif mode in ("PA", "LA"):
            arr = np.asarray(pil)[:, :, 0]
        elif mode == "1":
            arr = np.asarray(pil).astype(np.uint8)
        elif mode in ("I", "I;16", "I;16B", "I;16L"):
            arr = np.asarray(pil)
            if arr.size and (arr.min() < 0 or arr.max() > 255):
                raise MaskError(
                    f"Mask {path} has label values up to {int(arr.max())}; labels must be 0..255"
                )
        elif mode in ("RGB", "RGBA"):
            return _rgb_to_labels(np.asarray(pil.convert("RGB")), path)
        else:
            raise MaskError(
                f"Mask {path} has unsupported image mode {mode!r}; "
                "use a palette (P) or 8-bit gray PNG of label indices"
            )
    except (OSError, ValueError, SyntaxError, MemoryError) as exc:
        raise MaskError(f"Cannot read mask {path}: the data is corrupt ({exc})") from exc
    return np.ascontiguousarray(arr, dtype=np.uint8)


def write_mask(
    path: str | os.PathLike[str], mask: np.ndarray, palette: np.ndarray = VOC_PALETTE
) -> None:
    """Write a label mask as an 8-bit palette PNG, atomically.

    Args:
        path: Target ``.png`` file; Unicode paths work.
        mask: ``H x W`` integer (or bool) array of labels in 0..255.
        palette: ``(N, 3)`` uint8 colors, N <= 256, stored as the PNG palette.

    Raises:
        MaskError: The array is not 2-D, not integer, has labels outside 0..255, the path
            does not end in ``.png``, or the file cannot be written.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise MaskError(f"Cannot write mask {path}: masks are written as PNG, use a .png name")
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise MaskError(
            f"Cannot write mask {path}: expected an H x W array, got shape {mask.shape}"
        )
    if mask.dtype == np.bool_:
        mask = mask.astype(np.uint8)
    if not np.issubdtype(mask.dtype, np.integer):
        raise MaskError(f"Cannot write mask {path}: labels must be integers, got {mask.dtype}")
    if mask.dtype != np.uint8 and mask.size and (mask.min() < 0 or mask.max() > 255):
        raise MaskError(
            f"Cannot write mask {path}: labels must be in 0..255, "
            f"got {int(mask.min())}..{int(mask.max())}"
        )
    pal = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    if len(pal) > 256:
        raise MaskError(f"Cannot write mask {path}: a palette has at most 256 colors")
    flat = np.zeros((256, 3), dtype=np.uint8)
    flat[: len(pal)] = pal
    img = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8))  # mode "L"
    img.putpalette(flat.tobytes())  # turns the image into mode "P", indices unchanged
    try:
        with atomic_path(path) as tmp:
            img.save(tmp, format="PNG")
    except WriteError as exc:
        raise MaskError(str(exc)) from exc


def check_mask(
    mask: np.ndarray,
    image_shape: tuple[int, ...],
    num_classes: int,
    path: str | os.PathLike[str] | None = None,
) -> None:
    """Check that a mask fits its image and the class count.

    Args:
        mask: ``H x W`` label array.
        image_shape: The image's shape, ``(H, W)`` or ``(H, W, C)``.
        num_classes: Valid labels are ``0 .. num_classes - 1`` and 255 (void).
        path: The mask file, named in the message when given.

    Raises:
        MaskError: The sizes differ (both are given as width x height) or labels are out
            of range (the offending labels are listed).
    """
    mask = np.asarray(mask)
    name = f"Mask {path}" if path is not None else "Mask"
    if mask.ndim != 2:
        raise MaskError(f"{name} must be a 2-D label array, got shape {mask.shape}")
    if not (np.issubdtype(mask.dtype, np.integer) or mask.dtype == np.bool_):
        raise MaskError(f"{name} must hold integer labels, not {mask.dtype}")
    mh, mw = mask.shape
    ih, iw = int(image_shape[0]), int(image_shape[1])
    if (mh, mw) != (ih, iw):
        raise MaskError(f"{name} is {mw}x{mh} pixels but its image is {iw}x{ih} (width x height)")
    labels = np.unique(mask)
    bad = labels[((labels < 0) | (labels >= num_classes)) & (labels != VOID)]
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:10]) + (", ..." if bad.size > 10 else "")
        raise MaskError(
            f"{name} has labels outside 0..{num_classes - 1} and {VOID} (void): {shown}"
        )
