"""The one pixel budget of every image the core decodes, checked from the header first.

Every path that turns bytes into pixels (image files, masks, labelme ``imageData`` and
mask shapes, project images) opens the data with :func:`open_image_header`, which reads
only the header and refuses an image whose declared size is over the budget before a
single pixel is decoded, so a small file declaring a huge size (a decompression bomb)
costs neither time nor memory.
"""

from __future__ import annotations

import io
import os
import struct
import warnings

from PIL import Image, UnidentifiedImageError

from core.errors import FCNStudioError

MAX_PIXELS = 100_000_000
"""Images with more pixels than this are refused before they are decoded."""


def pixel_error(source: str | os.PathLike[str], what: str, width: int | None,
                height: int | None, max_pixels: int,
                error: type[FCNStudioError]) -> FCNStudioError:
    """The error for an image over the budget (``width``/``height`` None: unknown, huge)."""
    if width is None or height is None:
        size = "it declares a size of more than"
    else:
        size = f"{width}x{height} is {width * height:,} pixels, more than"
    return error(f"Cannot read {what} {source}: {size} the limit of {max_pixels:,} pixels")


def check_pixels(width: int, height: int, source: str | os.PathLike[str], what: str,
                 error: type[FCNStudioError], max_pixels: int = MAX_PIXELS) -> None:
    """Raise ``error`` naming ``source`` when ``width x height`` is over ``max_pixels``."""
    if int(width) * int(height) > max_pixels:
        raise pixel_error(source, what, int(width), int(height), max_pixels, error)


def open_image_header(data: bytes, source: str | os.PathLike[str], what: str,
                      error: type[FCNStudioError],
                      max_pixels: int = MAX_PIXELS) -> Image.Image | None:
    """Open ``data`` with PIL reading only the header, and enforce the pixel budget.

    Returns:
        The lazily decoded PIL image, or None when PIL does not know the format.

    Raises:
        error: The header declares more than ``max_pixels`` pixels (PIL's own bomb
            check included), naming ``source``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            pil = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            # PIL refuses images over 2 * MAX_IMAGE_PIXELS before telling their size
            raise pixel_error(source, what, None, None, max_pixels, error) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
            return None
        except Exception:  # a plugin choking on a malformed header
            return None
    try:
        width, height = pil.size
    except Exception:
        return None
    check_pixels(width, height, source, what, error, max_pixels)
    return pil


def decode_pil(pil: Image.Image, source: str | os.PathLike[str], what: str,
               error: type[FCNStudioError]) -> Image.Image:
    """Decode the pixels of a header-checked image; corrupt data is ``error``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            pil.load()
        except Image.DecompressionBombError:
            raise pixel_error(source, what, None, None, MAX_PIXELS, error) from None
        except (OSError, ValueError, SyntaxError, EOFError, MemoryError,
                IndexError, TypeError, struct.error) as exc:
            raise error(f"Cannot read {what} {source}: the data is corrupt ({exc})") from exc
    return pil

