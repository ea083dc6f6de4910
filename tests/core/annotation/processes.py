"""Helpers for tests that run a worker process (kill -9 tests)."""

from __future__ import annotations

import select
import subprocess
import time


def wait_ready(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Wait until the worker prints ``ready`` (kill it and fail with its stderr if it
    exits or does not within ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if line.strip() == "ready":
                return
            if not line:
                break
    proc.kill()
    raise AssertionError(f"worker did not start: {proc.stderr.read()}")
