"""Reading files with every failure as the caller's error type, naming the file.

Beyond a missing file this covers what ``open`` turns into raw OSErrors or hangs: a
name over the file system's limit, a symlink loop, a folder, and non-regular files (a
FIFO would block a reader forever, a device never ends).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from core.errors import FCNStudioError


def describe_os_error(exc: OSError) -> str:
    """A short reason for an OSError (ELOOP and ENAMETOOLONG spelled out)."""
    if exc.errno == errno.ELOOP:
        return "a symbolic link loop"
    if exc.errno == errno.ENAMETOOLONG:
        return "the name is too long for the file system"
    return exc.strerror or str(exc)


def check_regular_file(path: str | os.PathLike[str], error: type[FCNStudioError],
                       what: str = "file") -> os.stat_result:
    """Stat ``path`` (following links) and require a regular file.

    Raises:
        error: The file is missing, unreachable, a folder or not a regular file.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"Cannot read {what} {path}: the file does not exist") from None
    except (OSError, ValueError) as exc:
        reason = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
        raise error(f"Cannot read {what} {path}: {reason}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise error(f"Cannot read {what} {path}: it is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"Cannot read {what} {path}: not a regular file (a pipe or device)")
    return st


def is_regular_file(path: str | os.PathLike[str]) -> bool:
    """Like ``Path.is_file`` but False (not an exception) for over-long names and loops."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def read_bytes(path: str | os.PathLike[str], error: type[FCNStudioError],
               what: str = "file", *, allow_empty: bool = False) -> bytes:
    """Read a whole regular file; every failure is ``error`` naming the file."""
    check_regular_file(path, error, what)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise error(f"Cannot read {what} {path}: {describe_os_error(exc)}") from exc
    if not data and not allow_empty:
        raise error(f"Cannot read {what} {path}: the file is empty")
    return data


def read_text(path: str | os.PathLike[str], error: type[FCNStudioError],
              what: str = "file") -> str:
    """Read a UTF-8 text file (a BOM is dropped); a bad encoding is ``error`` too."""
    data = read_bytes(path, error, what, allow_empty=True)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(
            f"Cannot read {what} {path}: it is not UTF-8 text (byte {exc.start}: "
            f"{data[exc.start:exc.start + 1]!r}); save it as UTF-8"
        ) from exc


def resolve(path: str | os.PathLike[str], error: type[FCNStudioError],
            what: str = "file") -> Path:
    """``Path(path).resolve()`` with symlink loops and bad names as ``error``."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        reason = describe_os_error(exc) if isinstance(exc, OSError) else "a symbolic link loop"
        raise error(f"Cannot use {what} {path}: {reason}") from exc
