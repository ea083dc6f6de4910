"""The four metrics of the FCN paper (Long, Shelhamer & Darrell, section 5).

With ``n_ij`` the number of pixels of class ``i`` predicted as class ``j`` and
``t_i = sum_j n_ij`` the number of pixels of class ``i``:

* pixel accuracy: ``sum_i n_ii / sum_i t_i``
* mean accuracy: ``(1/n_cl) sum_i n_ii / t_i``
* mean IU: ``(1/n_cl) sum_i n_ii / (t_i + sum_j n_ji - n_ii)``
* frequency weighted IU: ``(sum_k t_k)^-1 sum_i t_i n_ii / (t_i + sum_j n_ji - n_ii)``

Classes absent from both the truth and the prediction have no IU (``None``) and are left
out of the means; a class that is only predicted has IU 0 and counts in the mean IU; the
mean accuracy averages over the classes present in the truth. Void pixels are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "COUNT_CHUNK",
    "ConfusionAccumulator",
    "confusion_matrix",
    "count_labels",
    "scores_with_names",
    "segmentation_scores",
]

ArrayLike = torch.Tensor | np.ndarray


def _as_tensor(x: ArrayLike, device: torch.device | None) -> torch.Tensor:
    """A label array as an int64 tensor, on ``device`` when given."""
    if isinstance(x, torch.Tensor):
        t = x
    else:
        a = np.ascontiguousarray(x)
        if not a.flags.writeable:  # shown (read-only) label maps: a copy torch may own
            a = a.astype(np.int64)
        t = torch.from_numpy(a)
    if device is not None and t.device != device:
        t = t.to(device)
    return t.long()


def _integer_array(x: ArrayLike) -> np.ndarray | None:
    """``x`` as a flat integer numpy array (no copy when it is one), else None."""
    if isinstance(x, torch.Tensor):
        if x.device.type != "cpu" or x.requires_grad:
            return None
        x = x.numpy()
    a = np.asarray(x)
    return a.reshape(-1) if a.dtype.kind in "iu" else None


COUNT_CHUNK = 1 << 22
"""Pixels counted at a time: ``np.bincount`` widens its input to int64, so a whole 100 MP
label map would cost 800 MB for an instant; chunks bound that to 32 MB."""


def count_labels(labels: np.ndarray, minlength: int = 256) -> np.ndarray:
    """How many pixels have each (non-negative integer) label: int64, at least
    ``minlength`` long, counted in chunks of :data:`COUNT_CHUNK` pixels so memory does not
    grow with the image."""
    flat = np.asarray(labels).reshape(-1)
    counts = np.zeros(minlength, np.int64)
    for i in range(0, flat.size, COUNT_CHUNK):
        c = np.bincount(flat[i:i + COUNT_CHUNK], minlength=minlength)
        if c.size > counts.size:
            counts = np.concatenate([counts, np.zeros(c.size - counts.size, np.int64)])
        counts[:c.size] += c
    return counts


def _confusion_numpy(truth: ArrayLike, pred: ArrayLike, n: int,
                     ignore_index: int) -> torch.Tensor | None:
    """The confusion matrix of integer arrays on the CPU with narrow keys, in chunks of
    :data:`COUNT_CHUNK` pixels (uint8 label maps are never widened to int64 whole: a 12 MP
    mask against a prediction takes about 40 ms instead of 320, and memory does not grow
    with the image), or None when the general path must run (other inputs, bad labels:
    it words the error)."""
    t_all, p_all = _integer_array(truth), _integer_array(pred)
    if t_all is None or p_all is None or n < 1 or n * n >= 2**31:
        return None
    counts = np.zeros(n * n, np.int64)
    for i in range(0, t_all.size, COUNT_CHUNK):
        t, p = t_all[i:i + COUNT_CHUNK], p_all[i:i + COUNT_CHUNK]
        valid = t != ignore_index
        if not valid.all():
            t, p = t[valid], p[valid]
        if not t.size:
            continue
        if int(t.min()) < 0 or int(t.max()) >= n or int(p.min()) < 0 or int(p.max()) >= n:
            return None
        key = t.astype(np.int32) * np.int32(n)
        key += p.astype(np.int32, copy=False)
        counts += np.bincount(key, minlength=n * n)
    return torch.from_numpy(counts).reshape(n, n)


def confusion_matrix(
    truth: ArrayLike, pred: ArrayLike, num_classes: int, ignore_index: int = 255
) -> torch.Tensor:
    """Count pixels per (true class, predicted class) pair.

    Args:
        truth: Label array or tensor of any shape (e.g. ``H x W`` or ``N x H x W``).
        pred: Predicted labels, the same shape as ``truth``.
        num_classes: Number of classes.
        ignore_index: Truth label of pixels to ignore (void).

    Returns:
        An int64 tensor ``(num_classes, num_classes)``, rows = truth, columns =
        prediction, on the device of ``truth`` (of ``pred`` when ``truth`` is numpy).

    Raises:
        ValueError: The shapes differ, or a valid truth or prediction label is not in
            ``0 .. num_classes - 1``.
    """
    if tuple(truth.shape) != tuple(pred.shape):
        raise ValueError(
            f"Truth and prediction shapes differ: {tuple(truth.shape)} vs {tuple(pred.shape)}"
        )
    device = (
        truth.device if isinstance(truth, torch.Tensor)
        else pred.device if isinstance(pred, torch.Tensor)
        else None
    )
    if device is None or device.type == "cpu":
        counts = _confusion_numpy(truth, pred, int(num_classes), ignore_index)
        if counts is not None:
            return counts
    t = _as_tensor(truth, device).reshape(-1)
    p = _as_tensor(pred, device).reshape(-1)
    valid = t != ignore_index
    t, p = t[valid], p[valid]
    n = int(num_classes)
    if t.numel():
        bad_t = (t < 0) | (t >= n)
        if bool(bad_t.any()):
            labels = torch.unique(t[bad_t])[:10].tolist()
            raise ValueError(f"Truth labels outside 0..{n - 1} (and {ignore_index}): {labels}")
        bad_p = (p < 0) | (p >= n)
        if bool(bad_p.any()):
            labels = torch.unique(p[bad_p])[:10].tolist()
            raise ValueError(f"Predicted labels outside 0..{n - 1}: {labels}")
    counts = torch.bincount(n * t + p, minlength=n * n)
    return counts.reshape(n, n).to(torch.int64)


def segmentation_scores(conf: ArrayLike) -> dict[str, Any]:
    """Pixel accuracy, mean accuracy, mean IU and frequency weighted IU of a confusion matrix.

    Args:
        conf: ``(C, C)`` confusion matrix, rows = truth, columns = prediction.

    Returns:
        ``{"pixel_acc", "mean_acc", "mean_iu", "fw_iu"}`` as Python floats in [0, 1] and
        ``"per_class_iu"``: a list of C floats, None for classes absent from both truth and
        prediction. With no valid pixels every score is 0.0 and every IU is None.
    """
    if isinstance(conf, torch.Tensor):
        conf = conf.detach().cpu().numpy()
    m = np.asarray(conf, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"A confusion matrix must be square, got shape {m.shape}")
    diag = np.diag(m)
    t = m.sum(axis=1)  # pixels of each true class
    p = m.sum(axis=0)  # pixels predicted as each class
    total = t.sum()
    union = t + p - diag
    present = union > 0
    iu = np.zeros_like(diag)
    np.divide(diag, union, out=iu, where=present)
    in_truth = t > 0
    acc = np.zeros_like(diag)
    np.divide(diag, t, out=acc, where=in_truth)
    if total <= 0:
        return {
            "pixel_acc": 0.0, "mean_acc": 0.0, "mean_iu": 0.0, "fw_iu": 0.0,
            "per_class_iu": [None] * len(diag),
        }
    return {
        "pixel_acc": float(diag.sum() / total),
        "mean_acc": float(acc[in_truth].mean()) if in_truth.any() else 0.0,
        "mean_iu": float(iu[present].mean()) if present.any() else 0.0,
        "fw_iu": float((t * iu).sum() / total),
        "per_class_iu": [float(v) if ok else None for v, ok in zip(iu, present, strict=True)],
    }


def scores_with_names(scores: dict[str, Any], class_names: Sequence[str]) -> dict[str, Any]:
    """Scores with the per-class IUs keyed by class name (the CLI's evaluate JSON shape).

    Raises:
        ValueError: The number of names differs from the number of per-class IUs.
    """
    per_class = scores["per_class_iu"]
    if len(per_class) != len(class_names):
        raise ValueError(
            f"{len(class_names)} class names for {len(per_class)} per-class IUs"
        )
    return {
        "pixel_acc": scores["pixel_acc"],
        "mean_acc": scores["mean_acc"],
        "mean_iu": scores["mean_iu"],
        "fw_iu": scores["fw_iu"],
        "per_class_iu": dict(zip(class_names, per_class, strict=True)),
    }


class ConfusionAccumulator:
    """Sum confusion matrices over batches; the matrix lives on the first batch's device."""

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        """Start empty.

        Args:
            num_classes: Number of classes.
            ignore_index: Truth label of pixels to ignore.
        """
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self._matrix: torch.Tensor | None = None

    def update(self, truth: ArrayLike, pred: ArrayLike) -> None:
        """Add the pixels of one batch (see :func:`confusion_matrix`)."""
        conf = confusion_matrix(truth, pred, self.num_classes, self.ignore_index)
        if self._matrix is None:
            self._matrix = conf
        else:
            self._matrix += conf.to(self._matrix.device)

    @property
    def matrix(self) -> torch.Tensor:
        """The summed ``(C, C)`` int64 confusion matrix (zeros on the CPU before any update)."""
        if self._matrix is None:
            return torch.zeros((self.num_classes, self.num_classes), dtype=torch.int64)
        return self._matrix

    def scores(self) -> dict[str, Any]:
        """:func:`segmentation_scores` of the summed matrix."""
        return segmentation_scores(self.matrix)

    def reset(self) -> None:
        """Forget every pixel seen so far."""
        self._matrix = None
