"""Weights named like the reference FCNs (Caffe's and pytorch-fcn's) onto an FCN.

:func:`build_reference_fcn` maps ``conv1_1.weight``, ``score_fr.bias``, ``upscore2.weight``
... onto an :class:`~core.models.fcn.FCN`, detecting the variant (32s/16s/8s), the class
count and the channel width, and checking every shape before the model is built.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch

from core.checkpoints.checkpoint import ModelInfo
from core.checkpoints.validate import MAX_CLASSES, check_tensors, expected_shapes
from core.data.palette import VOC_CLASSES
from core.errors import CheckpointError, ClassCountError
from core.models.fcn import FCN, VGG16_STAGES, FCNConfig
from core.models.preprocess import CAFFE
from core.models.upsampling import FINAL_UPSAMPLERS, SKIP_UPSAMPLERS

__all__ = [
    "DECONV_LAYERS",
    "TRUNK_LAYERS",
    "VARIANT_LAYERS",
    "build_reference_fcn",
    "detect_variant",
    "expected_keys",
    "generic_class_names",
]

TRUNK_LAYERS: tuple[str, ...] = (
    *(f"conv{stage}_{i}" for stage, (_, convs) in enumerate(VGG16_STAGES, start=1)
      for i in range(1, convs + 1)),
    "fc6",
    "fc7",
)
DECONV_LAYERS: tuple[str, ...] = (*FINAL_UPSAMPLERS.values(), *SKIP_UPSAMPLERS)
VARIANT_LAYERS: dict[str, tuple[str, ...]] = {
    "32s": ("score_fr", "upscore"),
    "16s": ("score_fr", "score_pool4", "upscore2", "upscore16"),
    "8s": ("score_fr", "score_pool4", "score_pool3", "upscore2", "upscore_pool4", "upscore8"),
}
"""The layers with weights in each reference net (besides the trunk)."""

_AT_ONCE_NAME = re.compile(r"at[-_ ]?once", re.IGNORECASE)



def detect_variant(keys: Sequence[str] | set[str]) -> str:
    """The reference net (``"32s"``, ``"16s"`` or ``"8s"``) whose layers ``keys`` name."""
    layers = {k.rsplit(".", 1)[0] for k in keys}
    if layers & {"score_pool3", "upscore_pool4", "upscore8"}:
        return "8s"
    if layers & {"score_pool4", "upscore2", "upscore16"}:
        return "16s"
    return "32s"


def expected_keys(variant: str) -> list[str]:
    """The state-dict keys a reference FCN-``variant`` file holds."""
    keys = []
    for layer in TRUNK_LAYERS + VARIANT_LAYERS[variant]:
        keys.append(f"{layer}.weight")
        if layer not in DECONV_LAYERS:
            keys.append(f"{layer}.bias")
    return keys


def generic_class_names(n: int) -> list[str]:
    """``["class_0", "class_1", ...]`` for files that do not name their classes."""
    return [f"class_{i}" for i in range(n)]


def _strip_ones(shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(d) for d in shape)
    while len(shape) > 1 and shape[0] == 1:
        shape = shape[1:]
    return shape


def _fit(key: str, value: torch.Tensor, want: torch.Size, source: str, n: int,
         described: str) -> torch.Tensor:
    """``value`` reshaped to ``want`` where the layouts agree (legacy 4-D, fc), else an error."""
    if not value.is_floating_point():
        raise CheckpointError(f"{source}: layer {key} holds {value.dtype} values, not floats")
    value = value.detach().to(torch.float32)
    got = tuple(value.shape)
    if got == tuple(want):
        return value
    squeezed = _strip_ones(got)
    if value.numel() == want.numel():
        if squeezed == _strip_ones(want):  # Caffe's legacy (1, 1, 1, N) biases and the like
            return value.reshape(want)
        if key in ("fc6.weight", "fc7.weight") and len(squeezed) == 2 and squeezed[0] == want[0]:
            return value.reshape(want)  # a fully connected VGG layer (4096 x 25088)
    if key.startswith(("score_", "upscore")):
        dims = squeezed if len(squeezed) == len(want) else got
        class_dims = dims[:2] if key.startswith("upscore") else dims[:1]
        if any(d != n for d in class_dims):
            raise ClassCountError(
                f"{source}: layer {key} has shape {got}, i.e. {class_dims[0]} classes, but "
                f"score_fr has {n} classes (expected shape {tuple(want)})"
            )
    raise CheckpointError(
        f"{source}: layer {key} has shape {got}, the {described} built for it expects "
        f"{tuple(want)}"
    )


def build_reference_fcn(
    state: dict[str, torch.Tensor],
    *,
    source: str,
    at_once: bool | None = None,
    class_names: Sequence[str] | None = None,
    origin: str = "caffe",
    name: str | None = None,
) -> tuple[FCN, ModelInfo]:
    """Build the FCN that reference-named weights describe and load them, checking everything.

    The variant comes from the layers present, the class count from ``score_fr``, the width
    from ``conv1_1`` (64 x width output channels, so compact files work too). Layers the
    variant lacks keep their defaults: zero skip scores and bilinear upsampling, so the other
    outputs stay usable (the paper initializes 16s from 32s the same way).

    Args:
        state: ``{"conv1_1.weight": tensor, ...}`` as in the reference nets.
        source: the file, for error messages.
        at_once: scale pool4/pool3 (FCN-8s at-once); None: when an 8s file is named so.
        class_names: names of the classes (default: VOC for 21 classes, else generic).
        origin: recorded as ``training["source"]`` ("caffe", "pytorch-fcn", ...).
        name: the model's name (default: the file's stem).
    """
    file_name = Path(source).name
    check_tensors(state, source)  # float and finite, before anything is built
    variant = detect_variant(state)
    for key in ("conv1_1.weight", "score_fr.weight"):
        if key not in state:
            raise CheckpointError(f"{source} does not fit an FCN: missing layer {key}")
    for key in ("conv1_1.weight", "score_fr.weight"):
        if state[key].dim() != 4:
            raise CheckpointError(
                f"{source}: layer {key} has shape {tuple(state[key].shape)}, expected a 4-D "
                "convolution weight"
            )
    n = int(state["score_fr.weight"].shape[0])
    if not 1 <= n <= MAX_CLASSES:
        raise ClassCountError(f"{source}: score_fr has {n} classes; a model has 1..{MAX_CLASSES}")
    width = int(state["conv1_1.weight"].shape[0]) / 64
    if at_once is None:
        at_once = variant == "8s" and bool(_AT_ONCE_NAME.search(file_name))
    try:
        config = FCNConfig(num_classes=n, width=width, scale_skips=bool(at_once))
    except ValueError as exc:
        raise CheckpointError(f"{source} does not fit an FCN: {exc}") from exc
    if class_names is not None and len(class_names) != n:
        raise ClassCountError(
            f"{len(class_names)} class names given, but {source} has {n} classes (score_fr)"
        )
    expected = expected_keys(variant)
    missing = [k for k in expected if k not in state]
    unexpected = sorted(set(state) - set(expected))
    described = f"FCN-{variant}{' at-once' if at_once else ''} ({n} classes, width {width:g})"
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing layers {missing[:8]}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            parts.append(f"unexpected layers {unexpected[:8]}"
                         f"{' ...' if len(unexpected) > 8 else ''}")
        raise CheckpointError(f"{source} does not fit an {described}: {'; '.join(parts)}")

    shapes = expected_shapes(config)  # on the meta device: every shape checked first
    fitted = {k: _fit(k, v, shapes[k], source, n, described) for k, v in state.items()}
    model = FCN(config)
    own = model.state_dict()
    with torch.no_grad():
        for key, value in fitted.items():
            own[key].copy_(value)

    names = list(class_names) if class_names is not None else (
        list(VOC_CLASSES) if n == len(VOC_CLASSES) else generic_class_names(n)
    )
    note = (
        f"FCN-{variant}{' at-once' if at_once else ''} imported from {file_name} ({origin}). "
        f"Its {variant} output reproduces the reference net; the other outputs reuse its "
        "weights through untrained layers (zero skip scores, bilinear upsampling)."
    )
    if class_names is None and n != len(VOC_CLASSES):
        note += (
            f" The file does not name its {n} classes: they are called class_0 ... "
            f"class_{n - 1}; convert again with --classes FILE to name them."
        )
    info = ModelInfo(
        class_names=names,
        config=config,
        preprocessing=CAFFE,
        name=name or Path(source).stem,
        description=note,
        training={"source": origin, "file": file_name, "variant": variant,
                  "at_once": bool(at_once)},
    )
    return model, info
