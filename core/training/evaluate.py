"""Evaluate a model on labelled images: the paper's four metrics for each output variant."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from core.data.imageio import check_mask, read_image, read_mask
from core.errors import Cancelled
from core.inference import Segmenter
from core.metrics import VariantScores
from core.models.fcn import FCN
from core.models.preprocess import Preprocessing
from core.variants import VARIANTS

Pair = tuple[Path, Path]


def image_tensor(rgb: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """An HxWx3 uint8 array as a ``(1, 3, H, W)`` uint8 tensor on ``device``."""
    return torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).to(device)


@torch.inference_mode()
def evaluate(
    model: FCN,
    pairs: Sequence[Pair],
    preprocessing: Preprocessing,
    class_names: Sequence[str],
    *,
    device: torch.device | str = "cpu",
    variants: Iterable[str] = VARIANTS,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, dict]:
    """Run ``model`` on every (image, mask) pair; return ``{variant: scores}``.

    Scores have the CLI's JSON form: pixel_acc, mean_acc, mean_iu, fw_iu and per_class_iu
    keyed by class name. Void (255) pixels are ignored.
    """
    acc = VariantScores(class_names, list(variants))
    was_training = model.training
    model.eval()
    try:
        for i, (image_path, mask_path) in enumerate(pairs):
            rgb = read_image(image_path)
            mask = read_mask(mask_path)
            check_mask(mask, rgb.shape, len(acc.class_names), mask_path)  # names the mask
            outputs = model(preprocessing(image_tensor(rgb, device)), variants=acc.variants)
            acc.add(torch.from_numpy(mask.copy()).to(device),
                    {v: s[0] for v, s in outputs.items()})
            if progress:
                progress(i + 1, len(pairs))
    finally:
        model.train(was_training)
    return acc.scores()


def evaluate_segmenter(
    segmenter: Segmenter,
    pairs: Sequence[Pair],
    *,
    cancel: Callable[[], bool] | None = None,
) -> dict[str, dict]:
    """The four metrics per variant of a :class:`~core.inference.Segmenter` over ``pairs``.

    Unlike :func:`evaluate`, images of any size work: the segmenter tiles large ones and
    falls back on out-of-memory errors. ``cancel`` is polled between images and tiles.

    Raises:
        Cancelled: ``cancel()`` returned True.
        FCNStudioError: An unreadable image or a mask that does not fit.
    """
    acc = VariantScores(segmenter.class_names)
    for image_path, mask_path in pairs:
        if cancel is not None and cancel():
            raise Cancelled("Evaluation cancelled")
        rgb = read_image(image_path)
        mask = read_mask(mask_path)
        check_mask(mask, rgb.shape, len(acc.class_names), mask_path)
        pred = segmenter.predict(rgb, cancel=cancel)
        acc.add(mask, {v: pred.outputs[v].labels for v in acc.variants})
    return acc.scores()
