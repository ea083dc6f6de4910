"""Shared helpers of the app benchmarks: machine description, a compact model, statistics."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def machine() -> str:
    """CPU model name and core count, e.g. 'AMD EPYC, 2 cores'."""
    from benchmarks.runtime_common import cpu_name

    return f"{cpu_name()}, {os.cpu_count()} cores"


def percentiles(values: list[float]) -> dict[str, float]:
    """Median, p99 and max of a list of values."""
    arr = np.asarray(values, dtype=np.float64)
    return {"p50": float(np.median(arr)), "p99": float(np.percentile(arr, 99)),
            "max": float(arr.max()), "n": len(arr)}


def compact_checkpoint(path: Path, width: float = 0.25, num_classes: int = 21) -> Path:
    """Write an FCN-VGG16 checkpoint of reduced width (random weights) to ``path``."""
    import torch

    from core.checkpoints.checkpoint import ModelInfo, save_checkpoint
    from core.data.palette import VOC_CLASSES
    from core.models.fcn import fcn_vgg16

    torch.manual_seed(0)
    model = fcn_vgg16(num_classes=num_classes, width=width)
    with torch.no_grad():
        for name in ("score_fr", "score_pool4", "score_pool3"):
            getattr(model, name).weight.normal_(0.0, 0.5)
    names = list(VOC_CLASSES[:num_classes])
    save_checkpoint(path, model, ModelInfo(names, model.config, name=f"compact width {width}"))
    return path


def model_for_benchmark(tmp: Path, width: float) -> tuple[Path, str]:
    """The default model if it exists, else a compact one; returns (path, description)."""
    from core.paths import default_model_path

    default = default_model_path()
    if default.is_file():
        return default, f"default model ({default.name})"
    return compact_checkpoint(tmp / "compact.safetensors", width), f"compact FCN (width {width})"
