"""Work around a reference-count bug of the PySide6 6.12 wheels on Python < 3.12.

Those wheels return ``None`` from void methods (``QWidget.update()``,
``QCoreApplication.processEvents()``...) and ``True``/``False`` from ``Signal.emit()``
without taking a new reference. On Python 3.12+ these singletons are immortal and nothing
happens; on 3.10/3.11 every such call steals one reference, and after a few thousand calls
the interpreter aborts with "Fatal Python error: none_dealloc" (or "bool_dealloc").

:func:`immortalize_singletons` gives the singletons a reference count so large that it can
never reach zero, which is what Python 3.12 does (PEP 683).
"""

from __future__ import annotations

import ctypes
import sys

_EXTRA_REFS = 1 << 40
_AFFECTED = ("6.12.0",)  # pyproject.toml excludes these; the guard covers older installs


def _affected_pyside() -> bool:
    """True if the installed PySide6 is a release with the reference-count bug."""
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("PySide6-Essentials", "PySide6"):
        try:
            return version(dist) in _AFFECTED
        except PackageNotFoundError:
            continue
    return False
_done = False


def immortalize_singletons() -> bool:
    """Make None, True, False, Ellipsis and NotImplemented unkillable; True if patched."""
    global _done
    if _done or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    if not _affected_pyside():
        return False
    for obj in (None, True, False, Ellipsis, NotImplemented):
        # ob_refcnt is the first field of every CPython object (non-debug builds)
        ctypes.c_ssize_t.from_address(id(obj)).value += _EXTRA_REFS
    _done = True
    return True
