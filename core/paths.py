"""Where the project's bundled resources and the user's cache live.

The bundled data (default model, samples, icons) is the top-level ``resources`` package: in
a checkout it is the repository's ``resources/`` folder, in an installed wheel a package
beside ``core``. :func:`resource_path` finds it through :mod:`importlib.resources`, so the
same lookup works in a checkout, an editable install and an installed wheel; every lookup
of a bundled file goes through it.
"""

from __future__ import annotations

import os
from functools import cache
from importlib import resources as importlib_resources
from pathlib import Path

RESOURCE_PACKAGE = "resources"
"""The package holding the bundled data (the repository's ``resources/`` folder)."""


@cache
def _resource_root() -> Path:
    try:
        root = importlib_resources.files(RESOURCE_PACKAGE)
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            f"FCN Studio's bundled '{RESOURCE_PACKAGE}' package is missing: reinstall "
            "fcn-studio (an editable install older than the package needs "
            "'pip install -e .' again)"
        ) from exc
    if not isinstance(root, Path) or not (root / "models").is_dir():
        raise RuntimeError(
            f"the '{RESOURCE_PACKAGE}' package found at {root} is not FCN Studio's bundled "
            "data (it must be installed as plain files, with a models/ folder)"
        )
    return root


def resource_path(*parts: str) -> Path:
    """A bundled file or folder, e.g. ``resource_path("models", "default.safetensors")``.

    Args:
        *parts: Path components below ``resources/``; none gives the root.

    Returns:
        Its path on disk (whether it exists is the caller's check).

    Raises:
        RuntimeError: The ``resources`` package is missing or is not FCN Studio's.
    """
    return _resource_root().joinpath(*parts)


_NAMED: dict[str, tuple[str, ...]] = {
    "RESOURCES": (),
    "DEFAULT_MODEL": ("models", "default.safetensors"),
    "SAMPLES": ("samples",),
}


def __getattr__(name: str) -> Path:
    """``RESOURCES``, ``DEFAULT_MODEL``, ``SAMPLES``: :func:`resource_path`, when first used.

    Looked up lazily, so that importing this module never fails, even in a broken install.
    """
    if name in _NAMED:
        return resource_path(*_NAMED[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_model_path() -> Path:
    """The bundled default checkpoint (``FCN_STUDIO_MODEL`` overrides it)."""
    env = os.environ.get("FCN_STUDIO_MODEL")
    return Path(env) if env else resource_path("models", "default.safetensors")


def cache_dir() -> Path:
    """The user's cache folder for downloads (``FCN_STUDIO_CACHE`` or ~/.cache/fcn-studio)."""
    base = os.environ.get("FCN_STUDIO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "fcn-studio"
    )
    return Path(base)
