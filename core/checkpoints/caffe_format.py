"""Caffe ``.caffemodel`` files: a small protobuf wire-format reader of its own.

No caffe, no protobuf package: it reads the ``NetParameter`` message. Field numbers, from
BVLC/caffe ``src/caffe/proto/caffe.proto``:

- NetParameter: ``name = 1``, ``layers = 2`` (V1LayerParameter, deprecated), ``layer = 100``.
- LayerParameter: ``name = 1``, ``type = 2`` (string), ``blobs = 7``.
- V1LayerParameter: ``name = 4``, ``type = 5`` (enum: CONVOLUTION 4, DECONVOLUTION 39,
  INNER_PRODUCT 14), ``blobs = 6``.
- BlobProto: ``num = 1``, ``channels = 2``, ``height = 3``, ``width = 4`` (legacy 4-D shape),
  ``data = 5`` (float), ``diff = 6``, ``shape = 7`` (BlobShape: ``dim = 1``, int64),
  ``double_data = 8``, ``double_diff = 9``. Repeated numbers may be packed or not.

Errors name the file and the byte offset; nested groups are skipped with a stack and blob
shapes are multiplied in Python integers, so hostile files are ordinary errors.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import CheckpointError
from core.fileio import check_regular_file, describe_os_error

__all__ = ["CaffeLayer", "CaffeNet", "parse_net", "read_caffemodel", "read_net"]

# Wire types.
_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5

V1_LAYER_TYPES: dict[int, str] = {
    0: "None", 1: "Accuracy", 3: "Concat", 4: "Convolution", 5: "Data", 6: "Dropout",
    12: "ImageData", 14: "InnerProduct", 15: "LRN", 17: "Pooling", 18: "ReLU", 20: "Softmax",
    21: "SoftmaxWithLoss", 22: "Split", 25: "Eltwise", 39: "Deconvolution",
}
"""V1LayerParameter.LayerType enum values -> the string types of LayerParameter."""


@dataclass
class CaffeLayer:
    """One layer of a Caffe net: its name, type and parameter blobs (weights, then bias)."""

    name: str
    type: str
    blobs: list[np.ndarray] = field(default_factory=list)


@dataclass
class CaffeNet:
    """The parts of a ``NetParameter`` that carry weights."""

    name: str
    layers: list[CaffeLayer]
    format: str  # "layer" (LayerParameter, field 100) or "layers" (V1, field 2)


# --------------------------------------------------------------------------- wire format


class _Wire:
    """Reads protobuf fields from ``data`` (bytes, memoryview or mmap) at absolute offsets."""

    def __init__(self, data: bytes | memoryview | mmap.mmap, source: str) -> None:
        self.data = data
        self.source = source

    def corrupt(self, offset: int, what: str) -> CheckpointError:
        """The error for a truncated or malformed file."""
        return CheckpointError(
            f"{self.source} is not a valid Caffe model (truncated or corrupt): {what} at byte "
            f"{offset}"
        )

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        """Decode a varint at ``pos``; return (value, position after it)."""
        data, start, result, shift = self.data, pos, 0, 0
        while True:
            if pos >= end:
                raise self.corrupt(start, "truncated varint")
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result, pos
            shift += 7
            if shift >= 70:
                raise self.corrupt(start, "varint longer than 10 bytes")

    def field(self, pos: int, end: int) -> tuple[int, int, int, int, int]:
        """Read one field at ``pos``: (number, wire type, a, b, next position).

        For a varint ``a`` is the value; for length-delimited, fixed32 and fixed64 fields
        ``a:b`` is the payload's byte range. Groups are skipped (``a == b == -1``).
        """
        key, p = self.varint(pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise self.corrupt(pos, "field number 0")
        if wire == _VARINT:
            value, p = self.varint(p, end)
            return number, wire, value, -1, p
        if wire == _LEN:
            length, q = self.varint(p, end)
            if q + length > end:
                raise self.corrupt(
                    p, f"field {number} claims {length} bytes but only {end - q} remain"
                )
            return number, wire, q, q + length, q + length
        if wire in (_I32, _I64):
            size = 4 if wire == _I32 else 8
            if p + size > end:
                raise self.corrupt(p, f"truncated {size * 8}-bit field {number}")
            return number, wire, p, p + size, p + size
        if wire == _SGROUP:
            return number, wire, -1, -1, self.skip_group(number, p, end)
        if wire == _EGROUP:
            raise self.corrupt(pos, f"unexpected end of group {number}")
        raise self.corrupt(pos, f"invalid wire type {wire} (field {number})")

    def skip_group(self, number: int, pos: int, end: int) -> int:
        """Skip a (deprecated) group up to its end tag; return the position after it.

        Nested groups are tracked with a stack, not recursion, so a file of thousands of
        nested groups is an ordinary (fast) parse.
        """
        open_groups = [number]
        while pos < end:
            key, p = self.varint(pos, end)
            wire, inner = key & 7, key >> 3
            if wire == _EGROUP:
                if inner != open_groups[-1]:
                    raise self.corrupt(pos, f"end of group {inner} inside group "
                                            f"{open_groups[-1]}")
                open_groups.pop()
                if not open_groups:
                    return p
                pos = p
            elif wire == _SGROUP:
                if inner == 0:
                    raise self.corrupt(pos, "field number 0")
                open_groups.append(inner)
                pos = p
            else:
                pos = self.field(pos, end)[4]
        raise self.corrupt(pos, f"unterminated group {open_groups[-1]}")

    def string(self, a: int, b: int) -> str:
        """Decode a UTF-8 string payload."""
        try:
            return bytes(self.data[a:b]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.corrupt(a, "invalid UTF-8 in a name") from exc

    def array(self, dtype: str, a: int, b: int, what: str) -> np.ndarray:
        """A packed array of little-endian numbers in ``a:b`` (copied)."""
        size = np.dtype(dtype).itemsize
        if (b - a) % size:
            raise self.corrupt(a, f"{what}: {b - a} bytes is not a whole number of values")
        return np.frombuffer(self.data, dtype=dtype, count=(b - a) // size, offset=a).copy()

    def unpacked_run(self, tag_pos: int, end: int, tag: int, size: int) -> tuple[np.ndarray, int]:
        """Read consecutive unpacked fixed-size values sharing one-byte ``tag``, vectorized.

        Returns the raw value bytes as a ``(count, size)`` uint8 array and the next position.
        """
        stride = size + 1
        n = (end - tag_pos) // stride
        rows = np.frombuffer(self.data, dtype=np.uint8, count=n * stride, offset=tag_pos)
        rows = rows.reshape(n, stride)
        other = np.flatnonzero(rows[:, 0] != tag)
        count = int(other[0]) if other.size else n
        if count == 0:  # the value itself is cut off
            raise self.corrupt(tag_pos, "truncated unpacked value")
        return rows[:count, 1:].copy(), tag_pos + count * stride


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _parse_shape(w: _Wire, a: int, b: int) -> list[int]:
    dims: list[int] = []
    pos = a
    while pos < b:
        number, wire, x, y, pos = w.field(pos, b)
        if number != 1:
            continue
        if wire == _VARINT:
            dims.append(_signed64(x))
        elif wire == _LEN:
            p = x
            while p < y:
                v, p = w.varint(p, y)
                dims.append(_signed64(v))
        else:
            raise w.corrupt(x, f"BlobShape.dim has wire type {wire}")
    return dims


def _parse_blob(w: _Wire, a: int, b: int, where: str) -> np.ndarray:
    floats: list[np.ndarray] = []
    doubles: list[np.ndarray] = []
    legacy: dict[int, int] = {}
    shape: list[int] | None = None
    pos = a
    while pos < b:
        tag_pos = pos
        number, wire, x, y, pos = w.field(pos, b)
        if number in (1, 2, 3, 4):
            if wire != _VARINT:
                raise w.corrupt(tag_pos, f"{where}: legacy dimension has wire type {wire}")
            legacy[number] = _signed64(x)
        elif number == 5:
            if wire == _LEN:
                floats.append(w.array("<f4", x, y, f"{where} data"))
            elif wire == _I32:
                raw, pos = w.unpacked_run(tag_pos, b, 0x2D, 4)
                floats.append(raw.view("<f4").ravel())
            else:
                raise w.corrupt(tag_pos, f"{where}: data has wire type {wire}")
        elif number == 8:
            if wire == _LEN:
                doubles.append(w.array("<f8", x, y, f"{where} double_data"))
            elif wire == _I64:
                raw, pos = w.unpacked_run(tag_pos, b, 0x41, 8)
                doubles.append(raw.view("<f8").ravel())
            else:
                raise w.corrupt(tag_pos, f"{where}: double_data has wire type {wire}")
        elif number == 7:
            if wire != _LEN:
                raise w.corrupt(tag_pos, f"{where}: shape has wire type {wire}")
            shape = _parse_shape(w, x, y)
        # 6 (diff), 9 (double_diff) and unknown fields are not weights: skipped.
    if floats:
        data = np.concatenate(floats).astype(np.float32, copy=False)
    elif doubles:
        data = np.concatenate(doubles).astype(np.float32)
    else:
        data = np.zeros(0, dtype=np.float32)
    if shape is None:
        shape = [legacy.get(i, 0) for i in (1, 2, 3, 4)] if legacy else [data.size]
    if (any(d < 0 or d > 2**31 for d in shape) or len(shape) > 8
            or math.prod(shape) != data.size):  # Python ints: no int64 wrap
        raise CheckpointError(
            f"{w.source}: {where} has shape {tuple(shape)} but holds {data.size} values "
            "(truncated or corrupt file)"
        )
    return data.reshape(shape)


def _parse_layer(w: _Wire, a: int, b: int, v1: bool, index: int) -> CaffeLayer:
    name_field, type_field, blobs_field = (4, 5, 6) if v1 else (1, 2, 7)
    name, type_, blob_ranges = "", "", []
    pos = a
    while pos < b:
        tag_pos = pos
        number, wire, x, y, pos = w.field(pos, b)
        if number == name_field and wire == _LEN:
            name = w.string(x, y)
        elif number == type_field and v1 and wire == _VARINT:
            type_ = V1_LAYER_TYPES.get(x, f"V1 type {x}")
        elif number == type_field and not v1 and wire == _LEN:
            type_ = w.string(x, y)
        elif number == blobs_field:
            if wire != _LEN:
                raise w.corrupt(tag_pos, f"layer blobs have wire type {wire}")
            blob_ranges.append((x, y))
    name = name or f"<layer {index}>"
    blobs = [_parse_blob(w, x, y, f"layer {name} blob {i}") for i, (x, y) in
             enumerate(blob_ranges)]
    return CaffeLayer(name, type_, blobs)


def parse_net(data: bytes | memoryview | mmap.mmap, source: str = "caffemodel") -> CaffeNet:
    """Parse a binary ``NetParameter``; errors name ``source`` and the byte offset."""
    w = _Wire(data, source)
    end = len(data)
    name, layers, formats = "", [], set()
    pos = 0
    while pos < end:
        tag_pos = pos
        number, wire, x, y, pos = w.field(pos, end)
        if number == 1 and wire == _LEN:
            name = w.string(x, y)
        elif number in (2, 100):
            if wire != _LEN:
                raise w.corrupt(tag_pos, f"NetParameter field {number} has wire type {wire}")
            layers.append(_parse_layer(w, x, y, v1=number == 2, index=len(layers)))
            formats.add("layers" if number == 2 else "layer")
    if not layers:
        raise CheckpointError(f"{source} contains no Caffe layers: is it a binary .caffemodel?")
    return CaffeNet(name, layers, "+".join(sorted(formats)))


def read_net(path: str | os.PathLike[str]) -> CaffeNet:
    """Read a ``.caffemodel`` file (memory-mapped, so large files are cheap to parse)."""
    path = Path(path)
    if check_regular_file(path, CheckpointError, "Caffe model").st_size == 0:
        raise CheckpointError(f"{path} is empty: not a Caffe model")
    with _open_or_error(path) as fh:
        try:
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # not mappable (a pipe, some network file systems)
            return parse_net(fh.read(), str(path))
        try:
            return parse_net(mm, str(path))
        finally:
            with contextlib.suppress(BufferError):  # a traceback may still hold a view
                mm.close()


@contextlib.contextmanager
def _open_or_error(path: Path):
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise CheckpointError(f"Cannot read Caffe model {path}: {describe_os_error(exc)}") from exc
    with fh:
        yield fh


def read_caffemodel(path: str | os.PathLike[str]) -> dict[str, list[np.ndarray]]:
    """``{layer name: [blobs]}`` for the layers of a ``.caffemodel`` that carry weights."""
    return {layer.name: layer.blobs for layer in read_net(path).layers if layer.blobs}
