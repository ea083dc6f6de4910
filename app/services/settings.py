"""Persistent preferences (QSettings): recent files, last folder, device, overlay, auto-run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

MAX_RECENT = 10
ORGANIZATION = "FCN Studio"
APPLICATION = "FCN Studio"


class Settings:
    """Typed access to QSettings. ``FCN_STUDIO_SETTINGS`` names an INI file to use instead."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        """Use the INI file ``path`` (or ``$FCN_STUDIO_SETTINGS``), else the platform store."""
        path = path or os.environ.get("FCN_STUDIO_SETTINGS")
        if path:
            self.qsettings = QSettings(str(path), QSettings.Format.IniFormat)
        else:
            self.qsettings = QSettings(ORGANIZATION, APPLICATION)

    def value(self, key: str, default: Any = None, kind: type | None = None) -> Any:
        """A stored value converted to ``kind`` (default when missing or unreadable)."""
        raw = self.qsettings.value(key, default)
        if raw is None or kind is None:
            return raw
        try:
            if kind is bool:
                return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
            return kind(raw)
        except (TypeError, ValueError):
            return default

    def set(self, key: str, value: Any) -> None:
        """Store a value."""
        self.qsettings.setValue(key, value)

    # ------------------------------------------------------------------ recent files
    def recent_files(self) -> list[str]:
        """Recently opened files and folders, newest first."""
        raw = self.qsettings.value("recent", [])
        if isinstance(raw, str):
            raw = [raw]
        return [str(p) for p in (raw or [])][:MAX_RECENT]

    def add_recent(self, path: str | os.PathLike[str]) -> list[str]:
        """Put ``path`` first in the recent list; return the list."""
        text = str(Path(path).resolve())
        recent = [text, *(p for p in self.recent_files() if p != text)][:MAX_RECENT]
        self.set("recent", recent)
        return recent

    def clear_recent(self) -> None:
        """Forget the recent files."""
        self.set("recent", [])

    # ------------------------------------------------------------------ preferences
    @property
    def autorun(self) -> bool:
        """Segment each image as soon as it is shown (default on)."""
        return bool(self.value("inference/autorun", True, bool))

    @autorun.setter
    def autorun(self, on: bool) -> None:
        self.set("inference/autorun", bool(on))

    @property
    def device(self) -> str:
        """Preferred device id ("auto", "cpu", "cuda:N")."""
        return str(self.value("inference/device", "auto", str))

    @device.setter
    def device(self, device: str) -> None:
        self.set("inference/device", device)

    @property
    def overlay_opacity(self) -> float:
        """Overlay opacity in [0, 1]."""
        return min(1.0, max(0.0, float(self.value("view/opacity", 0.55, float))))

    @overlay_opacity.setter
    def overlay_opacity(self, value: float) -> None:
        self.set("view/opacity", float(value))

    @property
    def last_dir(self) -> str:
        """Folder of the last file dialog."""
        return str(self.value("paths/last_dir", str(Path.home()), str))

    @last_dir.setter
    def last_dir(self, folder: str) -> None:
        self.set("paths/last_dir", str(folder))

    # ------------------------------------------------------------------ editor tools
    @property
    def brush_size(self) -> int:
        """The editor's brush (and eraser) diameter in pixels (default 9)."""
        return int(self.value("editing/brush_size", 9, int))

    @brush_size.setter
    def brush_size(self, size: int) -> None:
        self.set("editing/brush_size", int(size))

    @property
    def eraser_value(self) -> int:
        """What the eraser paints: 0 (background, the default) or 255 (void)."""
        return 255 if self.value("editing/eraser", 0, int) == 255 else 0

    @eraser_value.setter
    def eraser_value(self, value: int) -> None:
        self.set("editing/eraser", int(value))

    @property
    def edit_tool(self) -> str:
        """The editor's tool ("brush", "eraser", "fill", …; default "brush")."""
        return str(self.value("editing/tool", "brush", str))

    @edit_tool.setter
    def edit_tool(self, tool: str) -> None:
        self.set("editing/tool", str(tool))
