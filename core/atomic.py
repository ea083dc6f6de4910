"""Atomic file writes: write to a temporary file beside the target, fsync, then replace.

Temporary files are named ``.<target name>.tmp-<pid>-<random><suffix>``. A process killed
while writing leaves its temporary file behind; :func:`clean_stale_temps` removes those
of a folder (only names of this pattern, whose writer is no longer running or that are
a day old), and the readers that own a folder call it when they open or save it.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from core.errors import WriteError

try:  # the checkpoint writers raise it for a full disk or an unwritable folder
    from safetensors import SafetensorError as _SafetensorError
except ImportError:  # pragma: no cover - safetensors is a dependency
    _SafetensorError = OSError  # type: ignore[assignment,misc]

_TEMP = re.compile(r"^\..+\.tmp-(?:(?P<pid>\d+)-)?[A-Za-z0-9_]+(?:\.[^.]*)?$")
STALE_AFTER_S = 24 * 3600.0
"""A temporary file this old is stale even if a process with its pid is running."""
DEAD_WRITER_GRACE_S = 2.0
"""A dead writer's temporary file is removed once it has not changed for this long."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        from core.fileio import describe_os_error

        return describe_os_error(exc)
    return str(exc)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces ``target``.

    If the body raises, the temporary file is removed and ``target`` is left untouched.
    ``suffix`` defaults to the target's suffix, so that writers that pick a format from the
    extension (OpenCV) keep working. The file gets the target's mode, or a new file's
    default (0666 less the umask), whatever mode the body's writer gave it.

    Raises:
        WriteError: The folder or the file cannot be written (a full disk, a read-only
            folder, a name too long...), naming ``target``; an OSError or SafetensorError
            of the body becomes one too.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.tmp-{os.getpid()}-",
            suffix=target.suffix if suffix is None else suffix,
            dir=target.parent,
        )
        os.close(fd)
    except OSError as exc:
        raise WriteError(f"Cannot write {target}: {_reason(exc)}") from exc
    tmp = Path(tmp_name)
    # mkstemp makes the file 0600; give it the mode the target has, or a new file's default
    try:
        mode = target.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_umask()
    try:
        yield tmp
        # after the body: some writers (safetensors) recreate the file with mode 0600
        with contextlib.suppress(OSError):
            os.chmod(tmp, mode)
        with open(tmp, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, (OSError, _SafetensorError)) and not isinstance(exc, WriteError):
            raise WriteError(f"Cannot write {target}: {_reason(exc)}") from exc
        raise


@contextlib.contextmanager
def atomic_open(target: str | os.PathLike[str], mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file for writing; it replaces ``target`` only if the body succeeds."""
    if not any(m in mode for m in "wx"):
        raise ValueError("atomic_open is for writing")
    with atomic_path(target) as tmp, open(tmp, mode.replace("x", "w"), **kwargs) as fh:
        yield fh
        fh.flush()


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_open(target, "wb") as fh:
        fh.write(data)


def atomic_write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_open(target, "w", encoding="utf-8") as fh:
        fh.write(text)


def _pid_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # exists (another user's) or cannot tell: keep the file
    return True


def is_stale_temp(path: str | os.PathLike[str], now: float | None = None) -> bool:
    """Whether ``path`` is one of our temporary files whose writer is gone."""
    path = Path(path)
    m = _TEMP.match(path.name)
    if not m:
        return False
    try:
        st = path.lstat()
    except OSError:
        return False
    age = (time.time() if now is None else now) - st.st_mtime
    if age > STALE_AFTER_S:
        return True
    pid = m.group("pid")
    return pid is not None and age > DEAD_WRITER_GRACE_S and not _pid_running(int(pid))


def clean_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the stale temporary files (see :func:`is_stale_temp`) of ``folder``.

    Never raises: a folder that cannot be listed or a file that cannot be removed is
    left as it is. Returns the files removed.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if ".tmp-" in entry.name and is_stale_temp(entry.path, now):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed
