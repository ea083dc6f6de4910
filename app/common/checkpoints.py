"""Checkpoint headers without torch, and the library of checkpoints in the models folder."""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

MODEL_SUFFIXES: tuple[str, ...] = (".caffemodel", ".pth.tar", ".pth", ".pt", ".safetensors")
"""What Import accepts (core.convert.input_format)."""
METADATA_KEY = "fcn_studio"
"""The safetensors ``__metadata__`` entry holding FCN Studio's JSON (core.checkpoint)."""
MAX_HEADER = 100 * 1024 * 1024


class HeaderError(ValueError):
    """A file is not a readable FCN Studio checkpoint."""


@dataclass(frozen=True)
class CheckpointSummary:
    """What the GUI shows of a checkpoint, read from its header only.

    Attributes:
        path: the ``.safetensors`` file.
        model_id: the key its predictions are stored under (``app.workers.support.model_id_for``).
        name: the model's name (the file's stem when unnamed).
        class_names: the classes.
        colors: one RGB color per class.
        training: the ``training`` metadata (converted files: source, file, variant, at_once).
    """

    path: Path
    model_id: str
    name: str
    class_names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    training: dict = field(default_factory=dict, compare=False)

    @property
    def variant(self) -> str:
        """The reference net a converted file came from ("32s", "16s", "8s"), else ""."""
        return str(self.training.get("variant", ""))

    def describe(self) -> str:
        """One line: name, classes and origin."""
        parts = [self.name, f"{len(self.class_names)} classes"]
        if self.variant:
            origin = self.training.get("source", "converted")
            parts.append(f"FCN-{self.variant} from {origin}")
        return " · ".join(parts)


def read_metadata(path: str | os.PathLike[str]) -> dict:
    """The FCN Studio metadata of a ``.safetensors`` checkpoint (its header, parsed).

    Raises:
        HeaderError: Missing, not safetensors, or without FCN Studio metadata.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                raise HeaderError(f"{path} is not a safetensors file (too short)")
            (size,) = struct.unpack("<Q", raw)
            if not 2 <= size <= MAX_HEADER:
                raise HeaderError(f"{path} is not a safetensors file (header size {size})")
            header = json.loads(fh.read(size))
    except OSError as exc:
        raise HeaderError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HeaderError(f"{path} is not a safetensors file ({exc})") from exc
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or METADATA_KEY not in meta:
        raise HeaderError(f"{path} has no FCN Studio metadata; import it (Model > Import) first")
    try:
        info = json.loads(meta[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise HeaderError(f"{path} has malformed FCN Studio metadata: {exc}") from exc
    if not isinstance(info, dict):
        raise HeaderError(f"{path} has malformed FCN Studio metadata")
    return info


def fallback_model_id(path: Path) -> str:
    """The model id of a checkpoint without a weights id: its path and modification time."""
    try:
        return f"{path.resolve()}@{path.stat().st_mtime_ns}"
    except OSError:
        return str(path)


def summarize(path: str | os.PathLike[str]) -> CheckpointSummary:
    """Read a checkpoint's header into a :class:`CheckpointSummary`.

    Raises:
        HeaderError: See :func:`read_metadata`; also class names or colors missing.
    """
    path = Path(path)
    info = read_metadata(path)
    names = info.get("class_names")
    colors = info.get("colors")
    if not isinstance(names, list) or not names:
        raise HeaderError(f"{path}: the metadata names no classes")
    if not isinstance(colors, list) or len(colors) != len(names):
        raise HeaderError(f"{path}: the metadata has no color per class")
    training = info.get("training")
    return CheckpointSummary(
        path=path,
        model_id=str(info.get("id") or "") or fallback_model_id(path),
        name=str(info.get("name") or "") or path.stem,
        class_names=tuple(str(n) for n in names),
        colors=tuple(tuple(int(v) for v in c[:3]) for c in colors),
        training=training if isinstance(training, dict) else {},
    )


def library_dir() -> Path:
    """Where imported and downloaded checkpoints go: ``core.paths.cache_dir()/models``."""
    from core.paths import cache_dir

    return cache_dir() / "models"


def library(extra: tuple[Path, ...] = ()) -> list[CheckpointSummary]:
    """The readable checkpoints of :func:`library_dir` and ``extra``, by name (no duplicates)."""
    folder = library_dir()
    paths = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    seen: set[Path] = set()
    found: list[CheckpointSummary] = []
    for path in [*paths, *extra]:
        key = path.resolve()
        if key in seen:
            continue
        seen.add(key)
        try:
            found.append(summarize(path))
        except HeaderError:
            continue
    return sorted(found, key=lambda s: (s.name.lower(), str(s.path)))


def model_stem(path: Path) -> str:
    """The file name without its model suffix (``fcn8s.pth.tar`` -> ``fcn8s``)."""
    name = path.name
    for suffix in MODEL_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or name
    return path.stem


def _same_source(src: Path, dest: Path) -> bool:
    """Whether the checkpoint ``dest`` was converted from (a file named like) ``src``."""
    try:
        have = summarize(dest)
    except HeaderError:
        return False
    if have.training.get("file") == src.name:
        return True
    if src.suffix.lower() == ".safetensors":
        try:
            return summarize(src).model_id == have.model_id
        except HeaderError:
            return False
    return False


def import_destination(src: Path, folder: Path) -> Path:
    """Where importing ``src`` writes its checkpoint: ``<folder>/<stem>.safetensors``.

    A re-import of the same file replaces its earlier conversion; another model of the same
    name gets ``<stem>-2.safetensors`` (then -3 ...), so nothing is overwritten by surprise.
    """
    stem = model_stem(src)
    n = 1
    while True:
        dest = folder / (f"{stem}.safetensors" if n == 1 else f"{stem}-{n}.safetensors")
        if not dest.exists() or _same_source(src, dest):
            return dest
        n += 1
