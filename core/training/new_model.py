"""A new FCN for the user's own classes, its trunk taken from a model they already have.

The trunk (conv1_1 ... fc7) comes from a source: any FCN Studio checkpoint (the bundled
model, a published VOC net, a fine-tune) or torchvision's ImageNet VGG16. The score layers
(``score_fr``, ``score_pool4``, ``score_pool3``) keep the source's weights for classes whose
names match (case and spacing ignored) and start at zero for new classes, as the paper
initializes new score layers; the upsamplers keep the source's weights between matched
classes and are bilinear elsewhere, so the fused heads keep the FCN's exact geometry. The
new model's metadata records the source as its parent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from core.annotation.classes import MAX_CLASSES, class_key
from core.checkpoints.checkpoint import ModelInfo, load_checkpoint
from core.data.palette import VOC_PALETTE
from core.errors import ClassCountError, FCNStudioError
from core.models.fcn import FCN, SCORE_LAYERS, FCNConfig
from core.models.preprocess import IMAGENET
from core.models.upsampling import FINAL_UPSAMPLERS, SKIP_UPSAMPLERS, bilinear_kernel

__all__ = [
    "IMAGENET_SOURCE",
    "NEW_MODEL_KIND",
    "ClassMatch",
    "match_classes",
    "new_model",
    "transfer",
    "untrained_classes",
]

IMAGENET_SOURCE = "imagenet"
"""The ``init`` of :func:`new_model` that means torchvision's ImageNet VGG16 trunk."""
NEW_MODEL_KIND = "new-model"
"""``ModelInfo.training["kind"]`` of a model made here and not trained since (training
replaces the record)."""


def untrained_classes(info: ModelInfo | None) -> list[str]:
    """The classes of ``info``'s model whose score layers still start at zero: those a
    new model (:func:`transfer`, :func:`new_model`) did not take from its source, as long
    as it has not been trained. Empty for any other model."""
    training = getattr(info, "training", None) or {}
    if training.get("kind") != NEW_MODEL_KIND:
        return []
    return [str(name) for name in training.get("new_classes") or []]


@dataclass(frozen=True)
class ClassMatch:
    """How the new classes relate to the source's.

    Attributes:
        pairs: ``(new index, source index)`` of the classes whose names match.
        new: Names of the classes the source does not know (fresh score weights).
        dropped: Names of the source's classes the new model does not have.
    """

    pairs: tuple[tuple[int, int], ...]
    new: tuple[str, ...]
    dropped: tuple[str, ...]


_key = class_key  # case, underscores and spacing ignored: as projects match names


def match_classes(names: Sequence[str], source: Sequence[str]) -> ClassMatch:
    """Match class names to the source's (case, underscores and spacing ignored)."""
    index = {_key(n): i for i, n in enumerate(source)}
    pairs = tuple((i, index[_key(n)]) for i, n in enumerate(names) if _key(n) in index)
    kept = {s for _, s in pairs}
    return ClassMatch(
        pairs=pairs,
        new=tuple(n for n in names if _key(n) not in index),
        dropped=tuple(n for i, n in enumerate(source) if i not in kept),
    )


def _check_names(names: Sequence[str]) -> list[str]:
    names = [str(n).strip() for n in names]
    if not names:
        raise FCNStudioError("A model needs at least one class")
    if len(names) > MAX_CLASSES:  # the project's limit: a model for any project fits
        raise ClassCountError(f"{len(names)} classes: at most {MAX_CLASSES} (labels "
                              f"0..{MAX_CLASSES - 1}; 255 is void)")
    if any(not n for n in names):
        raise FCNStudioError("Class names must not be empty")
    seen: set[str] = set()
    for n in names:
        if _key(n) in seen:
            raise FCNStudioError(f"The class {n!r} is named twice")
        seen.add(_key(n))
    return names


def transfer(
    source: FCN,
    source_info: ModelInfo,
    class_names: Sequence[str],
    colors: Sequence[Sequence[int]] | None = None,
    *,
    name: str = "",
) -> tuple[FCN, ModelInfo]:
    """A new FCN for ``class_names`` with ``source``'s trunk (see the module docstring).

    Args:
        source: The model whose trunk (and matching score rows) is taken; not modified.
        source_info: Its metadata (class names, preprocessing, id).
        class_names: The new model's classes, background (or the first class) first.
        colors: One RGB color per class (default: the source's for matched classes, the
            VOC palette for the others).
        name: The new model's name.

    Raises:
        FCNStudioError: Empty, duplicate or too many class names, or colors that do not fit.
    """
    names = _check_names(class_names)
    n = len(names)
    match = match_classes(names, source_info.class_names)
    if colors is None:
        src_colors = dict(match.pairs)
        colors = [source_info.colors[src_colors[i]] if i in src_colors
                  else VOC_PALETTE[i] for i in range(n)]
    colors = _colors(colors, n)
    config = replace(source.config, num_classes=n)
    model = FCN(config)
    with torch.no_grad():
        own = model.state_dict()
        src = source.state_dict()
        for layer in model._trunk:
            for p in ("weight", "bias"):
                key = f"{layer}.{p}"
                if key in own:
                    own[key].copy_(src[key])
        rows = torch.tensor([i for i, _ in match.pairs], dtype=torch.long)
        from_rows = torch.tensor([s for _, s in match.pairs], dtype=torch.long)
        for layer in SCORE_LAYERS:  # new classes stay at zero (the paper's init)
            if rows.numel():
                own[f"{layer}.weight"][rows] = src[f"{layer}.weight"][from_rows].to(
                    own[f"{layer}.weight"].dtype)
                own[f"{layer}.bias"][rows] = src[f"{layer}.bias"][from_rows].to(
                    own[f"{layer}.bias"].dtype)
        for layer in (*FINAL_UPSAMPLERS.values(), *SKIP_UPSAMPLERS):
            w = own[f"{layer}.weight"]
            w.copy_(bilinear_kernel(n, w.shape[-1]))
            if rows.numel():  # the source's (possibly learned) weights between kept classes
                w[rows[:, None], rows[None, :]] = src[f"{layer}.weight"][
                    from_rows[:, None], from_rows[None, :]].to(w.dtype)
    info = ModelInfo(
        class_names=names,
        config=config,
        colors=colors,
        preprocessing=source_info.preprocessing,
        name=name or f"{source_info.name or 'model'} · {n} classes",
        description=(f"A model for {n} classes with the trunk of {source_info.name or 'a model'}"
                     f"; {len(match.pairs)} classes kept their score weights"
                     + (f", new: {', '.join(match.new)}" if match.new else "") + "."),
        parent=source_info.id or None,
        training={"kind": NEW_MODEL_KIND, "trunk": source_info.name, "trunk_id": source_info.id,
                  "kept_classes": [names[i] for i, _ in match.pairs],
                  "new_classes": list(match.new)},
    )
    return model, info


def _colors(colors: Sequence[Sequence[int]] | None, n: int) -> list[tuple[int, int, int]]:
    if colors is None:
        return [tuple(int(v) for v in VOC_PALETTE[i]) for i in range(n)]
    out = [tuple(int(v) for v in c) for c in colors]
    if len(out) != n or any(len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in out):
        raise FCNStudioError(f"{n} classes need {n} RGB colors (0-255)")
    return out  # type: ignore[return-value]


def new_model(
    class_names: Sequence[str],
    *,
    init: str | Path,
    colors: Sequence[Sequence[int]] | None = None,
    name: str = "",
) -> tuple[FCN, ModelInfo]:
    """A new FCN for ``class_names`` whose trunk comes from ``init``.

    Args:
        class_names: The classes.
        init: A checkpoint path, or :data:`IMAGENET_SOURCE` for torchvision's ImageNet
            VGG16 (width 1.0; downloaded once into torch.hub's cache; offline, the error
            says which file to place where).
        colors: One RGB color per class (default: see :func:`transfer`).
        name: The model's name.

    Raises:
        CheckpointError: The checkpoint cannot be read.
        DownloadError: The ImageNet weights are not available.
        FCNStudioError: Bad class names or colors.
    """
    if str(init) == IMAGENET_SOURCE:
        from core.models.backbone import load_imagenet_vgg16

        names = _check_names(class_names)
        model = FCN(FCNConfig(num_classes=len(names)))  # score layers zero, bilinear upsampling
        load_imagenet_vgg16(model, progress=False)
        info = ModelInfo(
            class_names=names, config=model.config, preprocessing=IMAGENET,
            colors=_colors(colors, len(names)), name=name or "ImageNet VGG16 trunk",
            description=f"A model for {len(names)} classes with torchvision's ImageNet VGG16 "
                        "trunk; every score layer starts at zero.",
            training={"kind": NEW_MODEL_KIND, "trunk": "torchvision VGG16 IMAGENET1K_V1",
                      "trunk_id": None, "kept_classes": [], "new_classes": names},
        )
        return model, info
    source, source_info = load_checkpoint(init)
    return transfer(source, source_info, class_names, colors,
                    name=name or f"{Path(init).stem} · {len(class_names)} classes")
