"""Model versions: checkpoints linked by ``ModelInfo.parent``, shown as a lineage tree.

Each fine-tune writes ``<project>/models/<base>-ftN.safetensors`` whose metadata names its
parent's id. Reading the versions costs only the safetensors headers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODELS_DIR = "models"
_FT_SUFFIX = re.compile(r"-ft\d+$")


@dataclass(frozen=True)
class Version:
    """One checkpoint of the lineage.

    Attributes:
        path: The checkpoint file.
        id: Its weights id.
        parent: The parent's id (None for a root).
        name: Its display name.
        created: ISO creation time.
        depth: Generations below its root in the known lineage.
        mean_iu: Mean IU (8s) on the corrected images after its fine-tune, if recorded.
    """

    path: Path
    id: str
    parent: str | None
    name: str
    created: str
    depth: int = 0
    mean_iu: float | None = None

    @property
    def label(self) -> str:
        """One line for menus: name, short id, parent, time, score."""
        parts = [self.name or self.path.stem, self.id[:8]]
        if self.parent:
            parts.append(f"from {self.parent[:8]}")
        if self.created:
            parts.append(self.created.replace("T", " ")[:16])
        if self.mean_iu is not None:
            parts.append(f"mean IU {self.mean_iu:.3f}")
        return " · ".join(parts)


def _after_mean_iu(info: Any) -> float | None:
    for entry in reversed(info.metrics or []):
        if entry.get("split") == "corrections" and entry.get("stage") == "after":
            value = entry.get("8s", {}).get("mean_iu") if isinstance(entry.get("8s"), dict) \
                else None
            return float(value) if value is not None else None
    return None


def read_versions(paths: Iterable[Path]) -> list[Version]:
    """The readable checkpoints among ``paths`` (one per id), ordered as a lineage tree:
    each root, then its descendants depth-first, oldest first."""
    from core.checkpoints.checkpoint import read_info
    from core.errors import FCNStudioError

    by_id: dict[str, Version] = {}
    for path in paths:
        try:
            info = read_info(path)
        except (FCNStudioError, OSError, ValueError):
            continue
        vid = info.id or str(Path(path).resolve())
        if vid not in by_id:
            by_id[vid] = Version(Path(path), vid, info.parent, info.name, info.created,
                                 mean_iu=_after_mean_iu(info))
    children: dict[str | None, list[Version]] = {}
    for v in by_id.values():
        parent = v.parent if v.parent in by_id else None
        children.setdefault(parent, []).append(v)
    ordered: list[Version] = []

    def visit(parent: str | None, depth: int) -> None:
        for v in sorted(children.get(parent, []), key=lambda v: (v.created, v.path.name)):
            ordered.append(Version(v.path, v.id, v.parent, v.name, v.created, depth, v.mean_iu))
            visit(v.id, depth + 1)

    visit(None, 0)
    return ordered


def version_files(folder: Path | None) -> list[Path]:
    """Checkpoints in a project's ``models/`` folder."""
    if folder is None or not (folder / MODELS_DIR).is_dir():
        return []
    return sorted((folder / MODELS_DIR).glob("*.safetensors"))


def next_version_path(folder: Path, parent: Path) -> Path:
    """``<folder>/models/<base>-ftN.safetensors`` with the first free N."""
    base = _FT_SUFFIX.sub("", parent.stem) or "model"
    out = folder / MODELS_DIR
    n = 1
    while (out / f"{base}-ft{n}.safetensors").exists():
        n += 1
    return out / f"{base}-ft{n}.safetensors"


def version_name(parent_name: str, path: Path) -> str:
    """Display name of a new version: the root's name and the file's ftN."""
    root = re.sub(r" · ft\d+$", "", parent_name or "") or _FT_SUFFIX.sub("", path.stem)
    match = re.search(r"ft\d+$", path.stem)
    return f"{root} · {match.group(0)}" if match else root


def lineage(versions: list[Version], current: str | None) -> list[Version]:
    """The versions of ``current``'s lineage (its root and every descendant of it), in the
    order of ``versions`` (:func:`read_versions`'s); empty when ``current`` is not listed."""
    by_id = {v.id: v for v in versions}
    if current not in by_id:
        return []
    root = by_id[current]
    seen = {root.id}
    while root.parent in by_id and root.parent not in seen:
        root = by_id[root.parent]
        seen.add(root.id)
    family = {root.id}
    for v in versions:  # parents come before their children in read_versions' order
        if v.parent in family and v.id != root.id:
            family.add(v.id)
    return [v for v in versions if v.id in family]
