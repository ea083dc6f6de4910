"""Evaluate a model on labelled images: the paper's four metrics for each output variant."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch

from core.data.imageio import check_mask, read_image, read_mask
from core.metrics import ConfusionAccumulator, scores_with_names
from core.models.fcn import FCN, VARIANTS
from core.models.preprocess import Preprocessing

Pair = tuple[Path, Path]


def image_tensor(rgb, device: torch.device | str) -> torch.Tensor:
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
    variants = [v for v in VARIANTS if v in set(variants)]
    n = len(class_names)
    acc = {v: ConfusionAccumulator(n) for v in variants}
    was_training = model.training
    model.eval()
    try:
        for i, (image_path, mask_path) in enumerate(pairs):
            rgb = read_image(image_path)
            mask = read_mask(mask_path)
            check_mask(mask, rgb.shape, n, mask_path)  # a size mismatch names the mask
            truth = torch.from_numpy(mask.copy()).to(device)
            x = preprocessing(image_tensor(rgb, device))
            outputs = model(x, variants=variants)
            for v in variants:
                acc[v].update(truth, outputs[v][0].argmax(0))
            if progress:
                progress(i + 1, len(pairs))
    finally:
        model.train(was_training)
    return {v: scores_with_names(acc[v].scores(), list(class_names)) for v in variants}
