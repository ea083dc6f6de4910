"""JSON parsing with a nesting limit, for every file the core reads JSON from.

Python's parser recurses once per nesting level, so a file of ``[[[[...`` ten thousand
deep raises RecursionError (or worse, in code that walks the result). :func:`loads`
measures the depth first, without recursion, and refuses deep documents with the
caller's error type naming the file.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from core.errors import FCNStudioError

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted (real files nest a few levels)."""

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def nesting_depth(text: str | bytes) -> int:
    """The deepest nesting of ``[`` / ``{`` in a JSON text, ignoring string contents."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if b"[" not in data and b"{" not in data:
        return 0
    stripped = _STRING.sub(b'""', data)
    arr = np.frombuffer(stripped, dtype=np.uint8)
    step = np.zeros(arr.shape, dtype=np.int32)
    step[(arr == ord("[")) | (arr == ord("{"))] = 1
    step[(arr == ord("]")) | (arr == ord("}"))] = -1
    return int(np.cumsum(step).max(initial=0))


def loads(text: str | bytes, source: str | os.PathLike[str], error: type[FCNStudioError],
          what: str = "JSON", max_depth: int = MAX_DEPTH) -> object:
    """Parse ``text``; malformed or too deeply nested JSON is ``error`` naming ``source``."""
    depth = nesting_depth(text)
    if depth > max_depth:
        raise error(f"Cannot read {what} {source}: the JSON nests {depth} levels deep "
                    f"(at most {max_depth})")
    try:
        return json.loads(text)
    except (ValueError, RecursionError, TypeError) as exc:
        raise error(f"Cannot read {what} {source}: not valid JSON ({exc})") from exc


def read_json(path: str | os.PathLike[str], error: type[FCNStudioError],
              what: str = "JSON file") -> object:
    """Read and parse a UTF-8 JSON file; every failure is ``error`` naming the file."""
    from core.fileio import read_text

    return loads(read_text(path, error, what), path, error, what)
