"""Your own classes from your own labels: a new model, then heads-only training.

The app's project training and the CLI's ``train --classes ... --init ... --heads-only``
run these same steps, with the same defaults and seed
(:meth:`~core.training.finetune.FineTuneConfig.for_mode`), so the same data gives the same
model:

1. :func:`make_model`: a new FCN for the classes with the trunk of ``init`` (a checkpoint
   or torchvision's ImageNet VGG16; classes whose names match keep their score weights),
   saved as a checkpoint whose parent is the trunk's model. The app's *New Model for This
   Project's Classes* does this.
2. :func:`~core.training.finetune.fine_tune` in fast mode on ``(image, mask, None)`` items
   whose masks may be partial: every pixel the user did not label is void (255) and
   ignored by the loss, so a few strokes per class are enough. The app's *Train* does this
   on the project's annotated images (held-out ones excepted).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from core.checkpoints.checkpoint import ModelInfo, save_checkpoint
from core.data.imageio import read_image, read_mask
from core.models.fcn import FCN
from core.training.finetune import FineTuneConfig, FineTuneResult, Item, fine_tune
from core.training.new_model import new_model
from core.training.trainer import TrainProgress

__all__ = ["dataset_items", "make_model", "train_own_classes"]


def dataset_items(pairs: Sequence[tuple[Path, Path]]) -> list[Item]:
    """``(rgb, mask, None)`` items of ``(image, mask)`` files (every labelled pixel counts;
    void pixels are ignored)."""
    return [(read_image(image), read_mask(mask), None) for image, mask in pairs]


def make_model(
    class_names: Sequence[str],
    init: str | Path,
    out_path: str | Path,
    *,
    colors: Sequence[Sequence[int]] | None = None,
    name: str = "",
) -> tuple[FCN, ModelInfo]:
    """A new model for ``class_names`` from ``init``'s trunk, saved atomically to
    ``out_path``; returns the model and its saved metadata (with its id).

    Raises:
        CheckpointError: ``init`` cannot be read.
        DownloadError: The ImageNet weights are not available (the message says which file
            to place where).
        FCNStudioError: Bad class names or colors, or the file cannot be written.
    """
    model, info = new_model(class_names, init=init, colors=colors, name=name)
    saved = save_checkpoint(Path(out_path), model, info)
    return model.eval(), saved


def train_own_classes(
    class_names: Sequence[str],
    init: str | Path,
    items: Sequence[Item],
    out_dir: str | Path,
    *,
    config: FineTuneConfig | None = None,
    colors: Sequence[Sequence[int]] | None = None,
    name: str = "",
    device: torch.device | str = "cpu",
    progress: Callable[[TrainProgress], None] | None = None,
    held_out: Sequence[tuple[Path, Path]] = (),
) -> tuple[ModelInfo, FineTuneResult]:
    """:func:`make_model` into ``out_dir/new-model.safetensors``, then heads-only training
    (default: ``FineTuneConfig.for_mode("fast")``) into ``out_dir/model.safetensors``.

    Returns:
        The new model's metadata (the trained model's parent) and the training result.
    """
    out_dir = Path(out_dir)
    model, info = make_model(class_names, init, out_dir / "new-model.safetensors",
                             colors=colors, name=name)
    config = config or FineTuneConfig.for_mode("fast")
    result = fine_tune(model, info, items, config, device=device, progress=progress,
                       out_path=out_dir / "model.safetensors", held_out=held_out)
    return info, result
