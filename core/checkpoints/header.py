"""A checkpoint's header without torch: the safetensors JSON header and FCN Studio's metadata.

A safetensors file starts with an 8-byte little-endian header size and a JSON header that
describes every tensor and holds ``__metadata__``; FCN Studio keeps its metadata (classes,
colors, architecture, training record) as a JSON string under :data:`METADATA_KEY` there.
Reading it costs a few kilobytes of I/O and no torch import, so the app lists and
summarizes checkpoints at start-up; :func:`core.checkpoints.checkpoint.read_info` builds a
validated :class:`~core.checkpoints.checkpoint.ModelInfo` from the same text.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from core.errors import CheckpointError, FCNStudioError
from core.fileio import check_regular_file, describe_os_error
from core.jsonio import loads

__all__ = ["MAX_HEADER", "METADATA_KEY", "MODEL_SUFFIXES", "metadata_json", "read_header"]

METADATA_KEY = "fcn_studio"
"""The safetensors ``__metadata__`` entry holding FCN Studio's JSON."""
MAX_HEADER = 100 * 1024 * 1024
"""The largest header accepted (safetensors' own limit)."""
MODEL_SUFFIXES: tuple[str, ...] = (".caffemodel", ".pth.tar", ".pth", ".pt", ".safetensors")
"""The model files ``convert`` (and the app's Import) accept."""

_CONVERT_HINT = ("If it is a Caffe or PyTorch file, convert it first: python -m core convert IN "
                 "OUT (in the app: Model > Import)")


def read_header(path: str | os.PathLike[str], error: type[FCNStudioError] = CheckpointError
                ) -> dict:
    """The parsed JSON header of a safetensors file (depth-limited, size-checked).

    Raises:
        error: Missing or unreadable, not safetensors, or a malformed header.
    """
    path = Path(path)
    size = check_regular_file(path, error, "checkpoint").st_size
    if size < 8:
        raise error(f"{path} is not a safetensors file (too short). {_CONVERT_HINT}")
    try:
        with open(path, "rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if not 2 <= length <= min(MAX_HEADER, size - 8):
                raise error(f"{path} is not a safetensors file (header size {length}). "
                            f"{_CONVERT_HINT}")
            raw = fh.read(length)
    except OSError as exc:
        raise error(f"Cannot read checkpoint {path}: {describe_os_error(exc)}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path} is not a safetensors file (its header is not UTF-8). "
                    f"{_CONVERT_HINT}") from exc
    header = loads(text, path, error, "safetensors header")
    if not isinstance(header, dict):
        raise error(f"{path} is not a safetensors file (its header is not an object)")
    return header


def metadata_json(path: str | os.PathLike[str],
                  error: type[FCNStudioError] = CheckpointError) -> str:
    """FCN Studio's metadata of a checkpoint, as the JSON text stored in its header.

    Raises:
        error: See :func:`read_header`; also a safetensors file without FCN Studio metadata.
    """
    meta = read_header(path, error).get("__metadata__")
    text = meta.get(METADATA_KEY) if isinstance(meta, dict) else None
    if not isinstance(text, str):
        raise error(f"{path} is a safetensors file without FCN Studio metadata. "
                    f"{_CONVERT_HINT}")
    return text
