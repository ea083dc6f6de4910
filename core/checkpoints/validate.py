"""Checks of checkpoint metadata and tensors before anything is built from them.

A checkpoint's header is read before its weights; the metadata it carries (class count,
width, colors...) decides how big a model is built. :func:`check_metadata` checks the
values' types and ranges, :func:`check_header_shapes` compares the tensor shapes the file
declares with the shapes the metadata implies (computed on the ``meta`` device, so no
memory is allocated), and :func:`check_tensors` refuses non-float or non-finite weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from core.errors import CheckpointError, ClassCountError

MAX_CLASSES = 255
"""Masks are uint8 with 255 as the void label, so a model has at most 255 classes."""

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_config_dict(d: object, source: str) -> None:
    """Types and ranges of a stored ``FCNConfig`` dict (before it is constructed)."""
    if not isinstance(d, dict):
        raise CheckpointError(f"{source}: the model config is not an object")
    n = d.get("num_classes", 21)
    if not _is_int(n) or not 1 <= n <= MAX_CLASSES:
        raise ClassCountError(f"{source}: num_classes must be an integer in 1..{MAX_CLASSES}, "
                              f"not {n!r}")
    width = d.get("width", 1.0)
    if not _is_number(width) or not 0 < width <= 4:
        raise CheckpointError(f"{source}: width must be a number in (0, 4], not {width!r}")
    dropout = d.get("dropout", 0.5)
    if not _is_number(dropout) or not 0 <= dropout <= 1:
        raise CheckpointError(f"{source}: dropout must be in [0, 1], not {dropout!r}")
    pad = d.get("conv1_padding", 100)
    if not _is_int(pad) or not 0 <= pad <= 1000:
        raise CheckpointError(f"{source}: conv1_padding must be an integer in 0..1000, "
                              f"not {pad!r}")
    for key in ("scale_skips", "learn_final_upsampling", "learn_skip_upsampling"):
        if key in d and not isinstance(d[key], bool):
            raise CheckpointError(f"{source}: {key} must be true or false, not {d[key]!r}")


def check_metadata(d: Mapping, source: str) -> None:
    """Types of a stored ``ModelInfo`` dict: class names, colors, config, lists."""
    check_config_dict(d.get("config"), source)
    names = d.get("class_names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise CheckpointError(f"{source}: class_names must be a list of strings")
    if len(set(names)) != len(names):
        raise CheckpointError(f"{source}: class_names repeat a name")
    colors = d.get("colors", [])
    if not isinstance(colors, list) or not all(
            isinstance(c, list) and len(c) == 3 and all(_is_int(v) and 0 <= v <= 255 for v in c)
            for c in colors):
        raise CheckpointError(f"{source}: colors must be a list of [r, g, b] integers 0..255")
    for key, kind in (("metrics", list), ("training", dict), ("name", str),
                      ("description", str), ("id", str), ("created", str)):
        if key in d and not isinstance(d[key], kind):
            raise CheckpointError(f"{source}: {key} must be a {kind.__name__}")
    if d.get("parent") is not None and not isinstance(d["parent"], str):
        raise CheckpointError(f"{source}: parent must be a string or null")
    if not isinstance(d.get("preprocessing"), dict):
        raise CheckpointError(f"{source}: preprocessing must be an object")


def expected_shapes(config) -> dict[str, torch.Size]:
    """Parameter shapes of ``FCN(config)``, computed without allocating memory."""
    from core.models.fcn import FCN

    return {k: v.shape for k, v in FCN(config, device="meta").state_dict().items()}


def check_header_shapes(declared: Mapping[str, tuple[int, ...]], config, source: str) -> None:
    """Compare the shapes a file declares with those ``config`` implies, before loading.

    Missing or unexpected layers are left to :func:`core.checkpoints.checkpoint.load_state` (which
    names them); a shape that differs is refused here, before the model is built.
    """
    for key, want in expected_shapes(config).items():
        got = declared.get(key)
        if got is None or tuple(got) == tuple(want):
            continue
        if key.startswith(("score_", "upscore")) and len(got) and got[0] != want[0]:
            raise ClassCountError(f"{source}: layer {key} has {got[0]} classes, the metadata "
                                  f"says {want[0]}")
        raise CheckpointError(f"{source}: layer {key} has shape {tuple(got)}, the metadata "
                              f"implies {tuple(want)}")


def check_tensors(state: Mapping[str, torch.Tensor], source: str) -> None:
    """Weights must be floating point (16, 32 or 64 bits) and finite."""
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{source}: {key} is not a tensor")
        if value.dtype not in FLOAT_DTYPES:
            raise CheckpointError(f"{source}: layer {key} holds {value.dtype} values; weights "
                                  "must be floating point (float16/bfloat16/float32/float64)")
        if value.numel() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{source}: layer {key} holds NaN or infinite values")
