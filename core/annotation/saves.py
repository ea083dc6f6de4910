"""Which corrections record belongs to which saved mask: a small manifest per image.

:meth:`Project.save_mask <core.annotation.project.Project.save_mask>` replaces two files
of an image, ``SegmentationClass/<id>.png`` (the mask) and ``Corrections/<id>.png`` (the
pixels the user corrected), each by an atomic rename. A process killed between the two
renames would leave the mask of one save beside the corrections of another. The manifest
``.saves/<id>.json`` names the pair that belongs together by the digests of the two
files' bytes::

    {"format": "fcn-studio-save/1",
     "mask": "<hex>", "corrections": "<hex>" | "whole" | "none",
     "previous": [{"mask": "<hex>", "corrections": ...}, ...]}

``corrections`` is the digest of the corrections file or, when the save wrote none,
``"whole"`` (the whole mask is the user's) or ``"none"`` (not corrected). A save runs:

1. keep the corrections file it replaces as ``.saves/<id>.<digest>.png`` (a hard link);
2. write the manifest: the new pair, and in ``previous`` the pairs the files on disk may
   be (the last save, and saves that did not finish);
3. rename the corrections file into place (or remove it), then the mask;
4. write the manifest with the new pair alone and remove the kept files.

:meth:`SaveRecord.resolve` finds which pair the files on disk are: the manifest's pair or
one in ``previous`` (a kill before or after the renames); when the mask is one pair's
and the corrections file another's (a kill between the two renames), that pair's
corrections come from the kept file (or are its ``"whole"``/``"none"``). A mask that
matches no recorded pair (changed outside the app, or the manifest is unreadable) has
*unknown* corrections, said as such and never paired with the file beside it. Projects
saved before manifests existed have none: their files are taken as they are (legacy).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from core.data.imageio import read_mask, write_mask
from core.data.palette import VOC_PALETTE
from core.errors import FCNStudioError, MaskError
from core.fileio import describe_os_error, is_regular_file
from core.jsonio import read_json

__all__ = ["NONE", "SAVES_DIR", "WHOLE", "Pair", "PairState", "SaveRecord", "SavedMask",
           "file_digest"]

SAVES_DIR = ".saves"
FORMAT = "fcn-studio-save/1"
WHOLE, NONE = "whole", "none"
"""The corrections of a pair without a corrections file."""
MAX_PREVIOUS = 4
"""Unfinished saves remembered (each a kill or a failed rename in a row)."""
PAIRED, RESTORED, LEGACY, UNKNOWN = "paired", "restored", "legacy", "unknown"
_HEX = re.compile(r"[0-9a-f]{32}")
_CORRECTION_PALETTE = np.array([[0, 0, 0], [255, 255, 255]], np.uint8)


def file_digest(path: str | os.PathLike[str]) -> str:
    """Hex blake2b-128 of a file's bytes."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Pair:
    """A mask file and the corrections that belong to it, by digest.

    Attributes:
        mask: Digest of the mask file.
        corrections: Digest of the corrections file, or ``"whole"`` / ``"none"``.
    """

    mask: str
    corrections: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"mask": self.mask, "corrections": self.corrections}

    @classmethod
    def from_dict(cls, d: object) -> Pair:
        """Inverse of :meth:`to_dict`; ValueError when ``d`` is not one."""
        if not isinstance(d, dict):
            raise ValueError("a pair is not a JSON object")
        mask, corr = d.get("mask"), d.get("corrections")
        if not (isinstance(mask, str) and _HEX.fullmatch(mask)):
            raise ValueError(f"bad mask digest {mask!r}")
        if not (isinstance(corr, str) and (corr in (WHOLE, NONE) or _HEX.fullmatch(corr))):
            raise ValueError(f"bad corrections {corr!r}")
        return cls(mask, corr)

    def fits(self, corrections: str | None) -> bool:
        """Whether a corrections file of this digest (None: no file) is this pair's."""
        if corrections is None:
            return self.corrections in (WHOLE, NONE)
        return self.corrections == corrections


@dataclass(frozen=True)
class PairState:
    """What the files of an image on disk are (see :meth:`SaveRecord.resolve`).

    Attributes:
        status: ``"paired"`` (the files are a recorded pair), ``"restored"`` (the mask is
            a recorded pair's, its corrections came from the kept file or the pair),
            ``"legacy"`` (no manifest: saved before they existed, taken as it is) or
            ``"unknown"`` (the mask matches no recorded pair: corrections unknown).
        corrections: ``"file"`` (read :attr:`source`), ``"whole"``, ``"none"``, or for a
            legacy file-less image ``""`` (the project's flag says).
        source: The corrections file to read (``Corrections/<id>.png`` or a kept one).
        note: Why the corrections are restored or unknown (for the user); else empty.
    """

    status: str
    corrections: str
    source: Path | None = None
    note: str = ""


@dataclass(frozen=True, eq=False)
class SavedMask:
    """An image's saved mask with the corrections that belong to it.

    Attributes:
        mask: ``H x W`` uint8 labels.
        corrections: Boolean ``H x W`` corrected pixels, or None (no pixel record).
        whole: The whole mask counts as the user's (saved so, or corrections unknown).
        status: ``"paired"``, ``"restored"``, ``"legacy"`` or ``"unknown"`` (see
            :class:`PairState`).
        note: For ``"restored"`` and ``"unknown"``: what happened, for the user.
    """

    mask: np.ndarray
    corrections: np.ndarray | None
    whole: bool
    status: str
    note: str = ""

    @property
    def corrected(self) -> bool:
        """The project's ``corrected`` flag that fits (whole, or any corrected pixel)."""
        return self.whole or (self.corrections is not None and bool(self.corrections.any()))


class SaveRecord:
    """The save manifest of one image of a project (see the module docstring)."""

    def __init__(self, folder: Path, image_id: str, mask_path: Path,
                 corrections_path: Path) -> None:
        """The record of ``image_id`` in the project ``folder``."""
        self.folder = Path(folder) / SAVES_DIR
        self.image_id = image_id
        self.path = self.folder / f"{image_id}.json"
        self.mask_path = mask_path
        self.corrections_path = corrections_path

    def kept_path(self, digest: str) -> Path:
        """Where a replaced corrections file of ``digest`` is kept during a save."""
        return self.folder / f"{self.image_id}.{digest}.png"

    # ------------------------------------------------------------------ reading

    def read(self) -> tuple[Pair, tuple[Pair, ...]] | None:
        """``(pair, previous pairs)``, or None when there is no manifest.

        Raises:
            ValueError: The manifest is unreadable or malformed.
        """
        if not os.path.lexists(self.path):
            return None
        try:
            d = read_json(self.path, MaskError, "save manifest")
            if not isinstance(d, dict) or d.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} manifest")
            previous = d.get("previous", [])
            if not isinstance(previous, list):
                raise ValueError("previous is not a list")
            return Pair.from_dict(d), tuple(Pair.from_dict(p) for p in previous)
        except (FCNStudioError, ValueError) as exc:
            raise ValueError(f"{self.path}: {exc}") from exc

    def on_disk(self) -> tuple[str | None, str | None]:
        """Digests of the mask file and the corrections file (None where there is none)."""
        return (file_digest(self.mask_path) if is_regular_file(self.mask_path) else None,
                file_digest(self.corrections_path)
                if is_regular_file(self.corrections_path) else None)

    def resolve(self, flag: bool) -> PairState:
        """Which recorded pair the image's files are (the mask file must exist).

        Args:
            flag: The project's ``corrected`` flag of the image (used for legacy images).
        """
        corr_file = self.corrections_path if is_regular_file(self.corrections_path) else None
        try:
            manifest = self.read()
        except ValueError as exc:
            return PairState(UNKNOWN, "", note=f"its save manifest is unreadable ({exc})")
        if manifest is None:
            return PairState(LEGACY, "file" if corr_file else "", corr_file)
        mask_d, corr_d = self.on_disk()
        pairs = (manifest[0], *manifest[1])
        for pair in pairs:
            if pair.mask == mask_d and pair.fits(corr_d):
                if corr_d is not None:
                    return PairState(PAIRED, "file", corr_file)
                return PairState(PAIRED, pair.corrections)
        for pair in pairs:
            if pair.mask != mask_d:
                continue
            why = ("a save was cut off between writing the corrections and the mask: "
                   "the corrections of the mask on disk were restored")
            if pair.corrections in (WHOLE, NONE):
                return PairState(RESTORED, pair.corrections, note=why)
            kept = self.kept_path(pair.corrections)
            if is_regular_file(kept) and file_digest(kept) == pair.corrections:
                return PairState(RESTORED, "file", kept, note=why)
        return PairState(UNKNOWN, "", note=(
            "the mask file is not the one the app saved last (changed outside the app?), "
            "so which pixels were corrected is unknown"))

    def load(self, flag: bool) -> SavedMask | None:
        """The saved mask and the corrections that belong to it (None: no saved mask).

        Args:
            flag: The project's ``corrected`` flag of the image.

        Raises:
            MaskError: A file is unreadable, or the corrections do not fit the mask.
        """
        if not is_regular_file(self.mask_path):
            return None
        mask = read_mask(self.mask_path)
        state = self._resolve(flag)
        corr = None
        if state.corrections == "file" and state.source is not None:
            corr = read_mask(state.source) > 0
            if corr.shape != mask.shape:
                raise MaskError(f"{state.source} is {corr.shape[::-1]}, its mask "
                                f"{mask.shape[::-1]}")
        if state.status == UNKNOWN:
            return SavedMask(mask, None, True, state.status, state.note)
        whole = state.corrections == WHOLE or (state.status == LEGACY and corr is None and flag)
        return SavedMask(mask, corr, whole, state.status, state.note)

    def kept_corrections(self, flag: bool) -> np.ndarray | bool | None:
        """What a save with ``corrected=None`` keeps: the corrections of the saved mask
        (an array or whole/none), or None to leave the corrections file as it is."""
        if not is_regular_file(self.mask_path):
            return None
        state = self._resolve(flag)
        if state.status == UNKNOWN:
            return True  # unknown corrections count as the user's whole mask
        if state.corrections in (WHOLE, NONE):
            return state.corrections == WHOLE
        if state.source is not None and state.source != self.corrections_path:
            return read_mask(state.source) > 0  # the kept file goes back into place
        return None

    def _resolve(self, flag: bool) -> PairState:
        try:
            return self.resolve(flag)
        except OSError as exc:
            raise MaskError(f"Cannot read the saved files of {self.image_id!r}: "
                            f"{describe_os_error(exc)}") from exc

    # ------------------------------------------------------------------ saving

    def write(self, mask: np.ndarray, corrected: np.ndarray | bool | None, flag: bool) -> bool:
        """Write the mask and its corrections as one pair (checked by the caller).

        Args:
            mask: ``H x W`` uint8 labels.
            corrected: Boolean corrected pixels, True (whole), False (not corrected) or
                None (keep the corrections file, or its absence, as it is).
            flag: The project's ``corrected`` flag of the image now.

        Returns:
            The ``corrected`` flag that fits the saved pair.

        Raises:
            MaskError: A file cannot be written (the files on disk still resolve).
        """
        corr_path = self.corrections_path
        try:
            with contextlib.ExitStack() as stack:
                # Both files are encoded first; on leaving the block the corrections are
                # renamed into place, then the mask (the stack unwinds in reverse).
                mask_tmp = stack.enter_context(atomic_path(self.mask_path))
                write_mask(mask_tmp, mask, VOC_PALETTE)
                if isinstance(corrected, np.ndarray):
                    corr_tmp = stack.enter_context(atomic_path(corr_path))
                    write_mask(corr_tmp, corrected.astype(np.uint8), _CORRECTION_PALETTE)
                    kind, flag = file_digest(corr_tmp), bool(corrected.any())
                elif corrected is not None:
                    kind, flag = (WHOLE if corrected else NONE), bool(corrected)
                elif is_regular_file(corr_path):
                    kind = file_digest(corr_path)
                else:
                    kind = WHOLE if flag else NONE
                pair = Pair(file_digest(mask_tmp), kind)
                self.begin(pair, flag)
                if isinstance(corrected, bool):
                    with contextlib.suppress(FileNotFoundError):
                        corr_path.unlink()
            self.commit(pair)
        except OSError as exc:
            raise MaskError(f"Cannot save the mask of {self.image_id!r}: "
                            f"{describe_os_error(exc)}") from exc
        return flag


    def begin(self, new: Pair, flag: bool) -> None:
        """Before a save's renames: keep the corrections file it replaces, record the pairs.

        Args:
            new: The pair being saved.
            flag: The project's ``corrected`` flag of the image now (legacy images).

        Raises:
            MaskError: The manifest or the kept file cannot be written.
        """
        try:
            manifest = self.read()
        except ValueError:
            manifest = None  # unreadable: what is on disk is all that can be kept
        mask_d, corr_d = self.on_disk()
        if manifest is not None:
            candidates = [manifest[0], *manifest[1]]
        elif mask_d is not None:
            candidates = [Pair(mask_d, corr_d or (WHOLE if flag else NONE))]
        else:
            candidates = []
        if corr_d is not None and corr_d != new.corrections:
            self._keep(corr_d)
        previous: list[Pair] = []
        for pair in candidates:
            if pair not in previous:
                previous.append(pair)
        self._write(new, previous[:MAX_PREVIOUS])

    def commit(self, new: Pair) -> None:
        """After a save's renames: record ``new`` alone and drop the kept files.

        Raises:
            MaskError: The manifest cannot be written (the save is then still resolved
                from the manifest ``begin`` wrote).
        """
        self._write(new, [])
        pattern = re.compile(re.escape(self.image_id) + r"\.[0-9a-f]{32}\.png")
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.folder):
                if pattern.fullmatch(entry.name):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)

    def _keep(self, digest: str) -> None:
        kept = self.kept_path(digest)
        if is_regular_file(kept):
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            try:
                os.link(self.corrections_path, kept)
            except FileExistsError:
                kept.unlink()
                os.link(self.corrections_path, kept)
        except OSError:  # no hard links here (FAT, some network shares): copy it
            try:
                atomic_write_bytes(kept, self.corrections_path.read_bytes())
            except (OSError, FCNStudioError) as exc:
                raise MaskError(f"Cannot keep the previous corrections {kept}: {exc}") from exc

    def _write(self, pair: Pair, previous: list[Pair]) -> None:
        d = {"format": FORMAT, **pair.to_dict(), "previous": [p.to_dict() for p in previous]}
        try:
            atomic_write_text(self.path, json.dumps(d, indent=1) + "\n")
        except FCNStudioError as exc:
            raise MaskError(str(exc)) from exc
