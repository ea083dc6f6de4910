"""Where the project's bundled resources and the user's cache live."""

from __future__ import annotations

import os
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
DEFAULT_MODEL = RESOURCES / "models" / "default.safetensors"
SAMPLES = RESOURCES / "samples"


def default_model_path() -> Path:
    """The bundled default checkpoint (``FCN_STUDIO_MODEL`` overrides it)."""
    return Path(os.environ.get("FCN_STUDIO_MODEL", DEFAULT_MODEL))


def cache_dir() -> Path:
    """The user's cache folder for downloads (``FCN_STUDIO_CACHE`` or ~/.cache/fcn-studio)."""
    base = os.environ.get("FCN_STUDIO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "fcn-studio"
    )
    return Path(base)
