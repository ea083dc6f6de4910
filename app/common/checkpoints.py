"""Checkpoint headers without torch, and the library of checkpoints in the models folder."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from core.checkpoints.header import MODEL_SUFFIXES, metadata_json
from core.errors import CheckpointError
from core.jsonio import loads

__all__ = [
    "MODEL_SUFFIXES",
    "CheckpointSummary",
    "fallback_model_id",
    "library",
    "read_metadata",
    "summarize",
]

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
        CheckpointError: Missing, not safetensors, or without FCN Studio metadata.
    """
    info = loads(metadata_json(path), path, CheckpointError, "FCN Studio metadata of")
    if not isinstance(info, dict):
        raise CheckpointError(f"{path} has malformed FCN Studio metadata")
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
        CheckpointError: See :func:`read_metadata`; also class names or colors missing.
    """
    path = Path(path)
    info = read_metadata(path)
    names = info.get("class_names")
    colors = info.get("colors")
    if not isinstance(names, list) or not names:
        raise CheckpointError(f"{path}: the metadata names no classes")
    if not isinstance(colors, list) or len(colors) != len(names):
        raise CheckpointError(f"{path}: the metadata has no color per class")
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
        except CheckpointError:
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
    except CheckpointError:
        return False
    if have.training.get("file") == src.name:
        return True
    if src.suffix.lower() == ".safetensors":
        try:
            return summarize(src).model_id == have.model_id
        except CheckpointError:
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
