"""What every worker shares: user-facing error text, the key predictions are stored under,
throttled progress and the lower OS priority of inference threads."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def describe_error(exc: BaseException, context: str) -> str:
    """A one-paragraph, user-facing message for an exception raised by the core or torch."""
    from core.errors import FCNStudioError

    name = type(exc).__name__
    text = (str(exc).strip().splitlines() or [name])[0]
    if isinstance(exc, MemoryError) or "OutOfMemory" in name or "out of memory" in text.lower():
        return (
            f"{context}: out of memory ({text}). Pick the CPU in the Device menu or open a "
            "smaller image."
        )
    if isinstance(exc, FCNStudioError):
        return f"{context}: {text}"
    return f"{context}: {name}: {text}"


def model_id_for(info: Any, path: Path) -> str:
    """The key a model's predictions are stored under: its weights id, else path and mtime."""
    if getattr(info, "id", ""):
        return str(info.id)
    try:
        return f"{path.resolve()}@{path.stat().st_mtime_ns}"
    except OSError:
        return str(path)


def throttled_progress(emit: Callable[[float], None]) -> Callable[[float], None]:
    """Wrap ``emit`` to pass a fraction on only at 1.0, after 2 % more or after 0.1 s.

    Keeps a fast prediction from flooding the GUI thread with queued progress signals.
    """
    last = [-1.0, 0.0]

    def report(fraction: float) -> None:
        now = time.monotonic()
        if fraction >= 1.0 or fraction - last[0] >= 0.02 or now - last[1] > 0.1:
            last[0], last[1] = fraction, now
            emit(float(fraction))

    return report


NICE_ENV = "FCN_STUDIO_WORKER_NICE"
DEFAULT_NICE = 5


def lower_thread_priority(increment: int | None = None) -> int | None:
    """Raise the calling thread's nice value (Linux); return the new value, None if unchanged.

    Threads this thread starts later (torch's OpenMP pool) inherit it, so inference yields
    the CPU to the GUI thread when both want it and runs at full speed otherwise.
    """
    if increment is None:
        try:
            increment = int(os.environ.get(NICE_ENV, DEFAULT_NICE))
        except ValueError:
            increment = DEFAULT_NICE
    if increment <= 0 or not sys.platform.startswith("linux"):
        return None
    try:
        tid = threading.get_native_id()
        nice = min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment)
        os.setpriority(os.PRIO_PROCESS, tid, nice)
    except (OSError, AttributeError):
        return None
    return nice
