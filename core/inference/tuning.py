"""The band height of streamed predictions ("tile size"): measured per model and device.

The work of a streamed prediction is the untiled network's whatever the band height
(:mod:`core.inference.streaming`), but its speed is not: short bands pay per-call overhead
many times, tall bands spill the activations out of the caches (and hold more memory). Small,
memory-bound models prefer shorter bands than wide ones. :func:`choose_band` measures the
per-pixel time of a few heights on a synthetic image and remembers the fastest per model
architecture, device, thread count and width class, in memory and in
``<cache>/band-heights.json``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from core.atomic import atomic_write_text
from core.errors import FCNStudioError
from core.paths import cache_dir

__all__ = ["CPU_BANDS", "GPU_BANDS", "band_cap", "choose_band", "tuning_key"]

log = logging.getLogger(__name__)

CPU_BANDS: tuple[int, ...] = (32, 64, 128, 256)
GPU_BANDS: tuple[int, ...] = (128, 256, 512, 1024, 2048)
MEASURE_WIDTH = 1024
"""Width of the synthetic image bands are measured on (at most the image's)."""

_lock = threading.Lock()
_memory: dict[str, int] = {}


def tuning_key(architecture: str, device: torch.device, width: int, dtype: torch.dtype) -> str:
    """What a measurement depends on: the architecture, device, threads, dtype, width class."""
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"{device.type}-{torch.get_num_threads()}threads"
    width_class = 1 << max(8, min(14, (max(1, width) - 1).bit_length()))
    return f"{architecture}|{where}|{dtype}|w{width_class}|torch{torch.__version__}"


def band_cap(bytes_per_row: int, device: torch.device, budget: int | None = None) -> int:
    """The tallest band whose activations fit ``budget`` bytes (default: 256 MB on the CPU,
    a quarter of the free memory on a GPU)."""
    if budget is None:
        budget = 256 << 20
        if device.type == "cuda":
            budget = torch.cuda.mem_get_info(device)[0] // 4
    return max(32, budget // max(1, bytes_per_row) // 32 * 32)


def _file() -> Path:
    return cache_dir() / "band-heights.json"


def _load() -> dict[str, int]:
    try:
        data = json.loads(_file().read_text(encoding="utf-8"))
        return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError, TypeError):
        return {}


def _store(key: str, band: int) -> None:
    try:
        data = _load()
        data[key] = band
        path = _file()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))
    except (OSError, FCNStudioError) as exc:  # a read-only cache only costs a measurement next time
        log.info("could not remember the band height: %s", exc)


def choose_band(key: str, measure: Callable[[int], float], candidates: Sequence[int],
                cap: int) -> int:
    """The remembered band height for ``key``, else the fastest of ``candidates`` (at most
    ``cap``) by ``measure(band)`` (seconds per pixel), remembered.

    Heights are tried from the shortest; the search stops when one is 10% slower than the
    best so far (rates are nearly unimodal in the height).
    """
    with _lock:
        if key in _memory:
            return min(_memory[key], cap)
        stored = _load().get(key)
        if stored is not None:
            _memory[key] = stored
            return min(stored, cap)
    allowed = [c for c in candidates if c <= cap] or [min(cap, min(candidates))]
    best, best_rate = allowed[0], float("inf")
    start = time.perf_counter()
    for band in allowed:
        rate = measure(band)
        log.info("band %d rows: %.1f ns per pixel", band, rate * 1e9)
        if rate < best_rate:
            best, best_rate = band, rate
        elif rate > 1.1 * best_rate:
            break
    log.info("band height for %s: %d rows (measured in %.1f s)", key, best,
             time.perf_counter() - start)
    with _lock:
        _memory[key] = best
    _store(key, best)
    return best
