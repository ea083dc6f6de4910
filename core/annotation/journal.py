"""A stroke journal: every finished stroke since the last save, replayed after a crash.

One append-only file per image, ``<project>/.journal/<image id>.fcnj``, beside the project's
masks. Autosave writes the mask every 30 s; the journal gets each finished stroke at once,
so a crash (kill -9, power loss) loses at most the stroke in progress.

File format (little-endian)::

    header   "FCNJ" | u16 version | u16 flags | u32 height | u32 width | 16-byte base | u32 crc
    record   u32 length | u32 crc32(payload) | payload (length bytes)
    payload  u32 seq | u32 x0 | u32 y0 | u32 x1 | u32 y1 | u8 kind | zlib(body)
    body     kind 0: the bbox's new values (h * w bytes)
             kind 1: packbits(footprint) | the footprint's new values (one per pixel)
             kind 2: packbits(footprint) | one value for every footprint pixel

``base`` identifies the mask the records apply over: the digest of the project's saved mask
when the journal began, or zero bytes when the image had no saved mask (the first record
then covers the whole image: the mask the session started from). That digest is the save
generation, held by both files: after a save the journal is removed, and a journal whose
base is not the saved mask (a crash between saving the mask and removing the journal)
holds only strokes the saved mask already has, so it is discarded, never replayed twice.

A torn or corrupt record (kill -9 during a write, a bad disk block) ends the journal: it and
everything after it are dropped and the file is truncated to the last good record. Each
append is fsynced (a stroke is at most a few a second, and an fsync costs milliseconds):
kill -9 alone would not need it (the page cache outlives the process), a power loss does.

Use from one thread. The app's calls, per image::

    journal = Journal.open(project.folder, image_id, (height, width), num_classes=n)
    mask, strokes = journal.replay(project.load_mask(image_id))  # before editing
    journal.append(image.bounds, mask)          # only for a start that is not the saved mask
    journal.append_edit(edit)                   # after each finished stroke (or other edit)
    journal.append_edit(edit, undo=True)        # after an undo (redo: append_edit(edit))
    project.save_mask(image_id, mask, ...)
    journal.clear_after_save(mask)              # after each successful save

The app (``app.features.editing.journaling``) appends a start only when it matters: before
a session's first change (the mask as it was before that change, then the change) or at
once for a start that is itself unsaved work (a mask file); with no saved mask,
:attr:`Journal.start` gives the recovered session its starting mask back.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import zlib
from dataclasses import dataclass
from operator import index
from pathlib import Path

import numpy as np

from core.annotation.labels import BBox, Edit
from core.data.palette import VOID
from core.errors import DatasetError, MaskError

__all__ = ["JOURNAL_DIR", "JOURNAL_SUFFIX", "Journal", "JournalRecord", "mask_digest"]

JOURNAL_DIR = ".journal"
JOURNAL_SUFFIX = ".fcnj"
MAGIC = b"FCNJ"
VERSION = 1
NO_BASE = bytes(16)
"""The base of a journal begun over no saved mask."""

_HEADER = struct.Struct("<4sHHII16s")
_HEADER_SIZE = _HEADER.size + 4
_FRAME = struct.Struct("<II")
_RECORD = struct.Struct("<IIIIIB")
_FULL, _MASKED, _UNIFORM = 0, 1, 2
_MAX_SIDE = 1 << 20


def mask_digest(mask: np.ndarray) -> bytes:
    """16 bytes identifying a mask's shape and content (the journal's base)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(struct.pack("<II", *mask.shape))
    h.update(np.ascontiguousarray(mask, np.uint8).tobytes())
    return h.digest()


@dataclass(frozen=True, eq=False)
class JournalRecord:
    """One journaled change: new values for the pixels of ``bbox``.

    Attributes:
        seq: 1 for the journal's first record, then consecutive.
        bbox: The rectangle changed.
        values: ``h x w`` new values (``footprint`` None), else one per footprint pixel
            (or a single one for all).
        footprint: Boolean ``h x w``: the pixels changed, or None for all of ``bbox``.
    """

    seq: int
    bbox: BBox
    values: np.ndarray
    footprint: np.ndarray | None

    def apply(self, mask: np.ndarray) -> None:
        """Write the new values into ``mask`` (in place)."""
        view = mask[self.bbox.slices]
        if self.footprint is None:
            view[...] = self.values
        else:
            view[self.footprint] = self.values


class Journal:
    """The stroke journal of one image of a project (see the module docstring)."""

    def __init__(self, path: Path, shape: tuple[int, int], num_classes: int | None) -> None:
        """Use :meth:`open`."""
        self.path = path
        self.shape = shape
        self.num_classes = num_classes
        self.discarded = ""
        """Why an existing journal was not (fully) replayed; empty when it was."""
        self.start: np.ndarray | None = None
        """After :meth:`replay` over no saved mask: the mask its first record set (where
        the session started, e.g. a prediction), else None."""
        self._base: bytes | None = None  # None until replay() says what the records are over
        self._seq = 0

    # ------------------------------------------------------------------ open / replay

    @classmethod
    def open(cls, project_folder: str | os.PathLike[str], image_id: str,
             shape: tuple[int, int], *, num_classes: int | None = None) -> Journal:
        """The journal of ``image_id`` in ``project_folder``; call :meth:`replay` next.

        Args:
            project_folder: The project folder.
            image_id: The image's project id (a plain file name).
            shape: The image's ``(height, width)``.
            num_classes: When given, journaled labels must be below it or 255 (void).

        Raises:
            DatasetError: ``image_id`` is not a plain file name.
            MaskError: ``shape`` is not a plausible mask size.
        """
        image_id = str(image_id)
        if (not image_id or image_id in (".", "..") or "/" in image_id or "\\" in image_id
                or "\0" in image_id or len(image_id.encode("utf-8", "replace")) > 200):
            raise DatasetError(f"Cannot journal image id {image_id!r}: not a plain file name")
        try:
            height, width = (index(v) for v in shape)
        except (TypeError, ValueError):
            raise MaskError(f"A journal's mask shape must be two integers, got {shape!r}") from None
        if not (0 < height <= _MAX_SIDE and 0 < width <= _MAX_SIDE):
            raise MaskError(f"A journal's mask shape must be 1..{_MAX_SIDE} a side, got {shape}")
        if num_classes is not None and not 0 < index(num_classes) <= VOID:
            raise MaskError(f"num_classes must be 1..{VOID}, got {num_classes}")
        path = Path(project_folder) / JOURNAL_DIR / f"{image_id}{JOURNAL_SUFFIX}"
        return cls(path, (height, width), num_classes)

    def replay(self, saved: np.ndarray | None) -> tuple[np.ndarray | None, int]:
        """Apply the journal's records over the project's saved mask.

        Call it once, before the first :meth:`append`: it also begins the journal over
        ``saved``. A journal that does not belong to ``saved`` (stale, another size,
        unreadable) is removed and :attr:`discarded` says why; a torn tail is dropped.

        Args:
            saved: The project's saved mask (``project.load_mask``), None when it has none.

        Returns:
            ``(mask, strokes)``: the mask as of the last journaled record (a new array) and
            the number of records replayed, or ``(saved, 0)`` when there was none to replay.

        Raises:
            MaskError: ``saved`` is not a uint8 mask of the journal's shape.
        """
        if saved is not None:
            saved = np.asarray(saved)
            if saved.shape != self.shape or saved.dtype != np.uint8:
                raise MaskError(f"Cannot replay the journal {self.path} over a {saved.dtype} "
                                f"{saved.shape} mask: it is for uint8 {self.shape}")
        base = NO_BASE if saved is None else mask_digest(saved)
        self.discarded, self.start = "", None
        self._base, self._seq = base, 0
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return saved, 0
        except OSError as exc:
            self._discard(f"unreadable ({exc})")
            return saved, 0
        problem, records, end = self._parse(data, base)
        if problem and not records:
            self._discard(problem)
            return saved, 0
        if problem:
            self.discarded = f"{self.path}: {problem}; the records before it were replayed"
            self._truncate(end)
        mask = np.zeros(self.shape, np.uint8) if saved is None else saved.copy()
        for record in records:
            record.apply(mask)
            if saved is None and record.seq == 1:
                self.start = mask.copy()
        self._seq = len(records)
        return (mask, len(records)) if records else (saved, 0)

    def _parse(self, data: bytes, base: bytes) -> tuple[str, list[JournalRecord], int]:
        """``(problem, good records, end of the last good one)``; problem '' if none."""
        if len(data) < _HEADER_SIZE:
            return "torn header", [], 0
        head = data[: _HEADER.size]
        (crc,) = struct.unpack_from("<I", data, _HEADER.size)
        if zlib.crc32(head) != crc:
            return "corrupt header", [], 0
        magic, version, _flags, height, width, journal_base = _HEADER.unpack(head)
        if magic != MAGIC or version != VERSION:
            return f"not a version {VERSION} journal", [], 0
        if (height, width) != self.shape:
            return f"a journal of a {width}x{height} mask, the image is {self.shape[1]}x" \
                   f"{self.shape[0]}", [], 0
        if journal_base != base:
            return ("begun before the last save (the saved mask holds its strokes)"
                    if base != NO_BASE else "begun over a saved mask that is gone"), [], 0
        records: list[JournalRecord] = []
        pos = _HEADER_SIZE
        while pos < len(data):
            try:
                record, size = self._decode(data, pos, len(records) + 1)
            except ValueError as exc:
                return f"record {len(records) + 1} at byte {pos} is {exc}", records, pos
            if not records and base == NO_BASE and (
                    record.footprint is not None or record.bbox != self._bounds()):
                return "first record does not hold the whole starting mask", [], _HEADER_SIZE
            records.append(record)
            pos += size
        return "", records, pos

    def _decode(self, data: bytes, pos: int, seq: int) -> tuple[JournalRecord, int]:
        if len(data) - pos < _FRAME.size:
            raise ValueError("torn (no frame)")
        length, crc = _FRAME.unpack_from(data, pos)
        if length < _RECORD.size or length > self._max_payload():
            raise ValueError(f"corrupt (length {length})")
        start = pos + _FRAME.size
        payload = data[start : start + length]
        if len(payload) < length:
            raise ValueError("torn")
        if zlib.crc32(payload) != crc:
            raise ValueError("corrupt (checksum)")
        got_seq, x0, y0, x1, y1, kind = _RECORD.unpack_from(payload)
        if got_seq != seq:
            raise ValueError(f"out of sequence ({got_seq}, expected {seq})")
        try:
            bbox = self._check_bbox((x0, y0, x1, y1))
        except MaskError as exc:
            raise ValueError(f"absurd ({exc})") from None
        h, w = bbox.height, bbox.width
        packed = (h * w + 7) // 8
        body = _inflate(payload[_RECORD.size :], packed + h * w)
        if kind == _FULL:
            if len(body) != h * w:
                raise ValueError("corrupt (size)")
            values, footprint = np.frombuffer(body, np.uint8).reshape(h, w), None
        elif kind in (_MASKED, _UNIFORM):
            if len(body) < packed:
                raise ValueError("corrupt (size)")
            bits = np.unpackbits(np.frombuffer(body[:packed], np.uint8), count=h * w)
            footprint = bits.reshape(h, w).astype(bool)
            values = np.frombuffer(body[packed:], np.uint8)
            if values.size != (1 if kind == _UNIFORM else int(footprint.sum())):
                raise ValueError("corrupt (size)")
        else:
            raise ValueError(f"corrupt (kind {kind})")
        if self.num_classes is not None:
            bad = (values >= self.num_classes) & (values != VOID)
            if bad.any():
                raise ValueError(f"absurd (label {int(values[bad][0])})")
        return JournalRecord(seq, bbox, values, footprint), _FRAME.size + length

    # ------------------------------------------------------------------ append / clear

    def append(self, bbox: BBox | tuple[int, int, int, int], values: np.ndarray,
               footprint: np.ndarray | None = None) -> int:
        """Journal one change (durably: the record is fsynced); return its sequence number.

        Args:
            bbox: ``(x0, y0, x1, y1)``, exclusive ends, inside the mask.
            values: The new values: ``h x w`` for the whole bbox, or with ``footprint``
                one per footprint pixel (raster order) or a single one for all.
            footprint: Boolean ``h x w``: which pixels of ``bbox`` changed (None: all).

        Raises:
            MaskError: The record does not fit the mask (bbox outside it, wrong sizes,
                labels out of range), or it cannot be written.
            RuntimeError: :meth:`replay` was not called first.
        """
        if self._base is None:
            raise RuntimeError("call Journal.replay() before appending")
        bbox = self._check_bbox(bbox)
        h, w = bbox.height, bbox.width
        values = self._check_values(values)
        if footprint is None:
            if values.shape != (h, w):
                raise MaskError(f"Journal record values are {values.shape}, its bbox {h}x{w}")
            kind, body = _FULL, values.tobytes()
        else:
            footprint = np.asarray(footprint)
            if footprint.dtype != np.bool_ or footprint.shape != (h, w):
                raise MaskError(f"A journal footprint must be bool {h}x{w}, got "
                                f"{footprint.dtype} {footprint.shape}")
            count = int(footprint.sum())
            values = values.reshape(-1)
            if values.size not in (1, count):
                raise MaskError(f"Journal record has {values.size} values for {count} pixels")
            kind = _UNIFORM if values.size == 1 and count != 1 else _MASKED
            body = np.packbits(footprint.reshape(-1)).tobytes() + values.tobytes()
        if self._seq == 0 and self._base == NO_BASE and (
                footprint is not None or bbox != self._bounds()):
            raise MaskError(f"The journal {self.path} has no saved mask to start from: its "
                            "first record must be the whole starting mask")
        payload = _RECORD.pack(self._seq + 1, *bbox, kind) + zlib.compress(body, 1)
        frame = _FRAME.pack(len(payload), zlib.crc32(payload)) + payload
        self._write(frame)
        self._seq += 1
        return self._seq

    def append_edit(self, edit: Edit, *, undo: bool = False) -> int:
        """Journal an :class:`Edit` as applied (or, with ``undo``, as undone)."""
        return self.append(edit.bbox, edit.old if undo else edit.new, edit.footprint())

    def clear_after_save(self, saved: np.ndarray) -> None:
        """Remove the journal: ``saved`` (the current mask) was just saved to the project.

        Call it after every successful save, with the mask that was saved, and before the
        next stroke is journaled; the journal then begins again over that mask.

        Raises:
            MaskError: ``saved`` is not a mask of the journal's shape, or the journal
                cannot be removed (harmless for recovery: its base is no longer the saved
                mask, so it would be discarded, not replayed; but new strokes would go
                into it, so call it again before journaling more).
        """
        saved = np.asarray(saved)
        if saved.shape != self.shape:
            raise MaskError(f"Saved mask is {saved.shape}, the journal {self.path} is for "
                            f"{self.shape}")
        try:
            self.path.unlink(missing_ok=True)
            _fsync_dir(self.path.parent)
        except OSError as exc:
            raise MaskError(f"Cannot remove the stroke journal {self.path}: {exc}") from exc
        self._base, self._seq = mask_digest(saved), 0

    @property
    def strokes(self) -> int:
        """Records in the journal (replayed and appended)."""
        return self._seq

    # ------------------------------------------------------------------ helpers

    def _bounds(self) -> BBox:
        return BBox(0, 0, self.shape[1], self.shape[0])

    def _max_payload(self) -> int:
        area = self.shape[0] * self.shape[1]
        raw = (area + 7) // 8 + area
        return _RECORD.size + raw + raw // 100 + 1024  # zlib's worst case is below this

    def _check_bbox(self, bbox: BBox | tuple[int, int, int, int]) -> BBox:
        try:
            x0, y0, x1, y1 = (index(v) for v in bbox)
        except (TypeError, ValueError):
            raise MaskError(f"A journal bbox must be four integers, got {bbox!r}") from None
        height, width = self.shape
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise MaskError(f"Journal bbox {(x0, y0, x1, y1)} is empty or outside the "
                            f"{width}x{height} mask")
        return BBox(x0, y0, x1, y1)

    def _check_values(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values)
        if values.dtype == np.bool_ or values.dtype.kind not in "iu":
            raise MaskError(f"Journal values must be integer labels, got {values.dtype}")
        if values.size == 0:
            raise MaskError("A journal record needs at least one value")
        limit = self.num_classes if self.num_classes is not None else VOID + 1
        bad = (values < 0) | (values > VOID) | ((values >= limit) & (values != VOID))
        if bad.any():
            raise MaskError(f"Journal values must be labels 0..{limit - 1} or {VOID}, got "
                            f"{int(values[bad].reshape(-1)[0])}")
        return np.ascontiguousarray(values, np.uint8)

    def _write(self, frame: bytes) -> None:
        try:
            self.path.parent.mkdir(exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
            try:
                created = os.fstat(fd).st_size == 0
                if created:
                    head = _HEADER.pack(MAGIC, VERSION, 0, *self.shape, self._base)
                    frame = head + struct.pack("<I", zlib.crc32(head)) + frame
                view = memoryview(frame)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_dir(self.path.parent)
        except OSError as exc:
            raise MaskError(f"Cannot write the stroke journal {self.path}: {exc}") from exc

    def _truncate(self, end: int) -> None:
        with contextlib.suppress(OSError):
            os.truncate(self.path, end)

    def _discard(self, problem: str) -> None:
        self.discarded = f"{self.path}: {problem}; it was discarded"
        with contextlib.suppress(OSError):
            self.path.unlink()


def _inflate(data: bytes, limit: int) -> bytes:
    """zlib-decompress at most ``limit`` bytes (a bomb stops there and fails the size check)."""
    try:
        d = zlib.decompressobj()
        out = d.decompress(data, limit + 1)
        if not d.eof or d.unused_data:
            raise ValueError("corrupt (compressed body)")
        return out
    except zlib.error as exc:
        raise ValueError(f"corrupt ({exc})") from None


def _fsync_dir(folder: Path) -> None:
    """Make a file's creation or removal in ``folder`` durable (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
