"""The FCN loss: per-pixel softmax cross-entropy, void (255) ignored, over several outputs."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from core.data.palette import VOID


def pixel_cross_entropy(
    scores: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean",
    ignore_index: int = VOID,
) -> torch.Tensor:
    """Softmax cross-entropy of ``(N, C, H, W)`` scores against ``(N, H, W)`` labels.

    ``reduction="mean"`` averages over the labelled pixels (the paper's normalized loss);
    ``"sum"`` adds them up (the reference "heavy" solvers' unnormalized loss). With no
    labelled pixel at all, the loss is zero (and still differentiable).
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', not {reduction!r}")
    loss = F.cross_entropy(scores.float(), target.long(), ignore_index=ignore_index,
                           reduction="sum")
    if reduction == "mean":
        loss = loss / (target != ignore_index).sum().clamp(min=1)
    return loss


def multi_output_loss(
    outputs: Mapping[str, torch.Tensor],
    target: torch.Tensor,
    weights: Mapping[str, float],
    *,
    reduction: str = "mean",
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the per-variant losses (HED-style deep supervision).

    Returns the total and each supervised variant's loss as a float (reading them waits for
    the device; :func:`multi_output_loss_tensors` does not).
    """
    total, parts = multi_output_loss_tensors(outputs, target, weights, reduction=reduction)
    return total, parts_to_floats(parts)


def multi_output_loss_tensors(
    outputs: Mapping[str, torch.Tensor],
    target: torch.Tensor,
    weights: Mapping[str, float],
    *,
    reduction: str = "mean",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """:func:`multi_output_loss` with the parts as detached tensors on the device."""
    total = torch.zeros((), device=target.device)
    parts: dict[str, torch.Tensor] = {}
    for variant, weight in weights.items():
        if weight == 0:
            continue
        loss = pixel_cross_entropy(outputs[variant], target, reduction=reduction)
        total = total + weight * loss
        parts[variant] = loss.detach()
    return total, parts


def parts_to_floats(parts: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Loss parts as floats, read from the device in one transfer."""
    if not parts:
        return {}
    values = torch.stack([v.float() for v in parts.values()]).tolist()
    return dict(zip(parts, values, strict=True))
