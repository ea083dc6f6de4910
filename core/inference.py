"""Inference: segment RGB images with an FCN, with tiling, progress, cancel and OOM fallback.

A :class:`Segmenter` wraps a model and its :class:`~core.checkpoint.ModelInfo`. Its
:meth:`~Segmenter.predict` returns, for each requested variant (32s, 16s, 8s), the softmax
probabilities, labels, confidence and normalized entropy as numpy arrays.

* Images whose larger side exceeds ``tile_size`` are split into overlapping tiles. Tile
  origins are multiples of the network stride (32), so a tile sees the same pooling grid
  as the whole image. The tiles' *scores* (logits) are blended with linear ramps over the
  middle half of each overlap (the outer quarter next to a tile's edge, where the network
  saw padding, is left to the neighbour; the weights sum to 1) before the softmax.
* Out of memory on the GPU, a prediction is retried with half-size tiles (down to 256 px),
  then on the CPU; each step is recorded in :attr:`Prediction.messages` and logged.

A Segmenter is not thread-safe: use one per thread (or serialize the calls).
"""

from __future__ import annotations

import gc
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.checkpoint import ModelInfo, load_checkpoint
from core.devices import pick_device
from core.errors import Cancelled, CheckpointError, ClassCountError, FCNStudioError
from core.models.fcn import VARIANTS
from core.paths import default_model_path
from core.runtime import Backend, select_backend

__all__ = ["Prediction", "Segmenter", "VariantOutput", "as_rgb"]

log = logging.getLogger(__name__)

STRIDE = 32
"""Tile origins are multiples of the FCN's output stride."""
MIN_TILE = 256
"""The smallest tile the out-of-memory fallback tries before moving to the CPU."""
_SUMMARY_ELEMENTS = 1 << 26
"""Softmax and statistics are computed over row bands of at most this many scores."""

ProgressFn = Callable[[float], None]
CancelFn = Callable[[], bool]


# --------------------------------------------------------------------------- results


@dataclass
class VariantOutput:
    """One variant's prediction for one image.

    Attributes:
        probs: ``(C, H, W)`` float16 softmax probabilities.
        labels: ``(H, W)`` uint8 predicted classes (argmax of the float32 probabilities).
        confidence: ``(H, W)`` float32 probability of the predicted class.
        entropy: ``(H, W)`` float32 entropy of the probabilities divided by ``log(C)``,
            in [0, 1] (0: certain; 1: uniform).
    """

    probs: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray
    entropy: np.ndarray

    @property
    def num_classes(self) -> int:
        """Number of classes C."""
        return int(self.probs.shape[0])

    def class_share(self) -> np.ndarray:
        """Fraction of the pixels predicted as each class, ``(C,)`` float64, summing to 1."""
        counts = np.bincount(self.labels.ravel(), minlength=self.num_classes)
        return counts[: self.num_classes] / max(1, self.labels.size)


@dataclass
class Prediction:
    """The outputs of one image.

    Attributes:
        outputs: ``{variant: VariantOutput}`` in :data:`~core.models.fcn.VARIANTS` order.
        image_size: ``(H, W)`` of the image.
        device: the device that produced the result ("cuda:0", "cpu"...).
        seconds: wall time of the prediction (a batch's time is shared equally).
        tiled: whether the image was processed in tiles.
        messages: what went differently than asked, e.g. out-of-memory fallbacks.
    """

    outputs: dict[str, VariantOutput]
    image_size: tuple[int, int]
    device: str
    seconds: float
    tiled: bool = False
    messages: list[str] = field(default_factory=list)

    def __getitem__(self, variant: str) -> VariantOutput:
        return self.outputs[variant]

    @property
    def variants(self) -> tuple[str, ...]:
        """The variants predicted."""
        return tuple(self.outputs)

    def disagreement(self) -> np.ndarray:
        """``(H, W)`` bool: pixels where the variants' labels are not all equal."""
        outs = list(self.outputs.values())
        differ = np.zeros(self.image_size, dtype=bool)
        for other in outs[1:]:
            differ |= other.labels != outs[0].labels
        return differ


# --------------------------------------------------------------------------- helpers


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Check an image and return it as a C-contiguous ``H x W x 3`` uint8 RGB array.

    Gray ``H x W`` (or ``H x W x 1``) is repeated over three channels; the alpha channel
    of ``H x W x 4`` is dropped.

    Raises:
        FCNStudioError: Not a uint8 numpy array of one of those shapes, or empty.
    """
    if not isinstance(image, np.ndarray):
        raise FCNStudioError(f"Expected an image as a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise FCNStudioError(
            f"Expected a uint8 image (values 0..255), got dtype {image.dtype}; "
            "convert it first, e.g. with core.data.imageio.read_image"
        )
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise FCNStudioError(
            f"Expected an H x W x 3 RGB, H x W x 4 RGBA or H x W gray image, "
            f"got shape {image.shape}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise FCNStudioError(f"The image is empty (shape {image.shape})")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image)


def _check_variants(variants: str | Iterable[str]) -> tuple[str, ...]:
    wanted = {variants} if isinstance(variants, str) else set(variants)
    unknown = wanted - set(VARIANTS)
    if unknown or not wanted:
        given = ", ".join(sorted(unknown)) or "none"
        raise FCNStudioError(f"Unknown variants: {given}; choose from {', '.join(VARIANTS)}")
    return tuple(v for v in VARIANTS if v in wanted)


def _is_oom(exc: BaseException) -> bool:
    """Whether ``exc`` is an out-of-memory error of CUDA, MPS or the CPU allocator."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    if isinstance(exc, (RuntimeError, MemoryError)):
        text = str(exc).lower()
        return isinstance(exc, MemoryError) or "out of memory" in text or (
            "can't allocate memory" in text
        )
    return False


def _free_cache(device: torch.device) -> None:
    """Return a failed attempt's cached memory to the device."""
    if device.type in ("cuda", "mps"):
        gc.collect()  # tensors kept alive by reference cycles of the failed attempt
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def _device_label(device: torch.device) -> str:
    return {"cuda": "CUDA", "mps": "MPS"}.get(device.type, "CPU")


def tile_spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Tiles ``[(start, stop), ...]`` covering ``range(length)``.

    Starts are multiples of :data:`STRIDE`; tiles are at most ``tile`` long; consecutive
    tiles overlap by at least ``overlap`` (when ``overlap <= tile - STRIDE``).
    """
    if length <= tile:
        return [(0, length)]
    step = max(STRIDE, (tile - overlap) // STRIDE * STRIDE)
    span = length - tile
    n = 1 + -(-span // step)
    starts = sorted({-(-(i * span) // ((n - 1) * STRIDE)) * STRIDE for i in range(n)})
    return [(s, min(s + tile, length)) for s in starts]


def _ramp(overlap: int) -> torch.Tensor:
    """Rising weights over an overlap: ~0 in its outer quarter, linear, 1 in its inner quarter.

    The outer quarter (next to the tile's edge, where the network saw padding instead of
    the image) is left to the neighbouring tile.
    """
    margin = overlap // 4
    rise = overlap - 2 * margin
    return torch.cat(
        [
            torch.full((margin,), 1e-3, dtype=torch.float64),
            (torch.arange(rise, dtype=torch.float64) + 0.5) / rise,
            torch.ones(margin, dtype=torch.float64),
        ]
    )


def _blend_weights(spans: list[tuple[int, int]], device: torch.device) -> list[torch.Tensor]:
    """1-D weights of each span, ramped over the overlaps, normalized to sum to 1."""
    length = spans[-1][1]
    weights = []
    for k, (a, b) in enumerate(spans):
        w = torch.ones(b - a, dtype=torch.float64)
        if k > 0:
            ov = min(spans[k - 1][1] - a, b - a)
            if ov > 0:
                w[:ov] *= _ramp(ov)
        if k + 1 < len(spans):
            ov = min(b - spans[k + 1][0], b - a)
            if ov > 0:
                w[b - a - ov :] *= _ramp(ov).flip(0)
        weights.append(w)
    total = torch.zeros(length, dtype=torch.float64)
    for (a, b), w in zip(spans, weights, strict=True):
        total[a:b] += w
    return [
        (w / total[a:b]).to(device, torch.float32)
        for (a, b), w in zip(spans, weights, strict=True)
    ]


class _Progress:
    """Maps per-chunk fractions to an overall fraction; reports only increases."""

    def __init__(self, fn: ProgressFn | None, total: int) -> None:
        self.fn = fn
        self.total = max(1, total)
        self.done = 0
        self.last = -1.0

    def chunk(self, size: int) -> Callable[[float], None]:
        base = self.done

        def report(fraction: float) -> None:
            self.emit((base + size * min(1.0, fraction)) / self.total)

        return report

    def finish_chunk(self, size: int) -> None:
        self.done += size
        self.emit(self.done / self.total)

    def emit(self, value: float) -> None:
        if self.fn is not None and value > self.last + 1e-9:
            self.last = value
            self.fn(value)


# --------------------------------------------------------------------------- segmenter


class Segmenter:
    """Runs an FCN on RGB images and summarizes its outputs (see the module docstring)."""

    def __init__(
        self,
        model: nn.Module,
        info: ModelInfo,
        *,
        device: str | torch.device | None = None,
        tile_size: int = 1024,
        tile_overlap: int = 128,
        backend: str | None = None,
    ) -> None:
        """Put ``model`` in eval mode on ``device`` (None: "auto", see :func:`pick_device`).

        ``backend`` chooses how the network runs (see :mod:`core.runtime`): None reads
        ``FCN_STUDIO_BACKEND`` and defaults to "auto", the fastest correct path for the
        device; "eager" runs the model as it is. What cannot be used falls back to eager with
        a logged reason (:attr:`backend_notes`).

        Raises:
            FCNStudioError: Bad tile settings, backend choice or device, or a model whose
                class count differs from ``info``'s.
        """
        if tile_size < 2 * STRIDE:
            raise FCNStudioError(f"tile_size must be at least {2 * STRIDE}, not {tile_size}")
        if not 0 <= tile_overlap <= tile_size // 2:
            raise FCNStudioError(
                f"tile_overlap must be in 0..{tile_size // 2} (half the tile), not {tile_overlap}"
            )
        config = getattr(model, "config", None)
        if config is not None and getattr(config, "num_classes", None) != info.num_classes:
            raise ClassCountError(
                f"The model has {config.num_classes} classes, its info {info.num_classes}"
            )
        if info.num_classes > 255:
            raise FCNStudioError(
                f"{info.num_classes} classes do not fit uint8 labels (at most 255; 255 is void)"
            )
        self.device = pick_device(device)
        self.model = model.eval().to(self.device)
        self.info = info
        self.tile_size = int(tile_size)
        self.tile_overlap = int(tile_overlap)
        try:
            self.backend: Backend = select_backend(
                self.model, self.device, backend, preprocessing=info.preprocessing
            )
        except ValueError as exc:
            raise FCNStudioError(str(exc)) from exc

    @property
    def backend_notes(self) -> list[str]:
        """Why the inference backend left features out or fell back to eager."""
        return list(self.backend.notes)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path | None = None,
        *,
        device: str | torch.device | None = None,
        **kw: int | str | None,
    ) -> Segmenter:
        """Load a checkpoint (None: the default model) onto ``device``.

        Raises:
            CheckpointError: The checkpoint is missing (for the default model, the message
                says how to get one), corrupt or does not fit.
        """
        dev = pick_device(device)
        if path is None:
            path = default_model_path()
            if not Path(path).is_file():
                raise CheckpointError(
                    f"No default model at {path}. Train one (python -m core train), convert "
                    "published weights (python -m core convert IN OUT), or pass a checkpoint "
                    "(--model CKPT) or set FCN_STUDIO_MODEL to its path"
                )
        model, info = load_checkpoint(path, device=dev)
        return cls(model, info, device=dev, **kw)

    @property
    def class_names(self) -> list[str]:
        """The model's class names."""
        return self.info.class_names

    # ------------------------------------------------------------------ public API

    def predict(
        self,
        image: np.ndarray,
        *,
        variants: str | Iterable[str] = VARIANTS,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
    ) -> Prediction:
        """Segment one ``H x W x 3`` uint8 RGB image (gray and RGBA are accepted too).

        Args:
            image: The image.
            variants: Variants to compute (a subset of 32s, 16s, 8s).
            progress: Called with the fraction done (0..1], after each tile; ends at 1.0.
            cancel: Polled between tiles; when it returns True, :class:`Cancelled` is raised.

        Raises:
            FCNStudioError: A bad image or variant; out of memory even on the CPU.
            Cancelled: ``cancel()`` returned True.
        """
        return self.predict_batch([image], variants=variants, progress=progress, cancel=cancel)[0]

    def predict_batch(
        self,
        images: Sequence[np.ndarray],
        *,
        variants: str | Iterable[str] = VARIANTS,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
        batch_size: int = 8,
    ) -> list[Prediction]:
        """Segment several images; images of equal size run together in batches.

        A batch holds at most ``batch_size`` images and ``tile_size**2`` pixels; images
        larger than a tile run alone. Arguments are as in :meth:`predict`; the results are
        in the order of ``images``.
        """
        wanted = _check_variants(variants)
        rgb = [as_rgb(img) for img in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(rgb):
            groups.setdefault(img.shape[:2], []).append(i)
        chunks: list[list[int]] = []
        for (h, w), idx in groups.items():
            n = 1 if max(h, w) > self.tile_size else self.tile_size**2 // (h * w)
            n = max(1, min(batch_size, n))
            chunks += [idx[k : k + n] for k in range(0, len(idx), n)]

        tracker = _Progress(progress, len(rgb))
        results: list[Prediction | None] = [None] * len(rgb)
        for chunk in chunks:
            if cancel is not None and cancel():
                raise Cancelled("Prediction cancelled")
            preds = self._predict_chunk(
                [rgb[i] for i in chunk], wanted, tracker.chunk(len(chunk)), cancel, []
            )
            for i, pred in zip(chunk, preds, strict=True):
                results[i] = pred
            tracker.finish_chunk(len(chunk))
        return [r for r in results if r is not None]

    # ------------------------------------------------------------------ internals

    def _forward(self, batch: torch.Tensor, variants: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """The network on a uint8 ``(N, 3, H, W)`` RGB batch already on the model's device.

        Returns ``{variant: (N, C, H, W) scores}`` on the same device (any float dtype),
        computed by :attr:`backend` (eager for inputs it does not take, e.g. on the CPU
        after an out-of-memory fallback).
        """
        x = self.info.preprocessing(batch).contiguous()
        return self.backend(x, variants)

    def _predict_chunk(
        self,
        images: list[np.ndarray],
        variants: tuple[str, ...],
        report: Callable[[float], None],
        cancel: CancelFn | None,
        messages: list[str],
    ) -> list[Prediction]:
        """Predict equal-size images together, stepping down on out-of-memory errors."""
        device, tile = self.device, self.tile_size
        overlap = self.tile_overlap
        h, w = images[0].shape[:2]
        while True:
            try:
                return self._run_chunk(
                    images, variants, device, tile, overlap, report, cancel, messages
                )
            except Exception as exc:  # only out-of-memory errors are handled
                if not _is_oom(exc):
                    raise
                cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            # outside the except block: the failed attempt's tensors are released
            _free_cache(device)
            label = _device_label(device)
            if len(images) > 1:
                self._note(
                    messages,
                    f"{label} out of memory with a batch of {len(images)}: "
                    "predicting one image at a time",
                    cause,
                )
                out: list[Prediction] = []
                for k, img in enumerate(images):
                    sub = self._predict_chunk(
                        [img], variants, _scaled(report, k, len(images)), cancel, list(messages)
                    )
                    out += sub
                return out
            effective = min(tile, max(h, w))
            if effective > MIN_TILE:
                tile = max(MIN_TILE, effective // 2 // STRIDE * STRIDE)
                overlap = min(self.tile_overlap, tile // 4)
                self._note(messages, f"{label} out of memory: fell back to {tile} px tiles", cause)
            elif device.type != "cpu":
                device, tile, overlap = torch.device("cpu"), self.tile_size, self.tile_overlap
                self._note(messages, f"{label} out of memory: fell back to the CPU", cause)
            else:
                raise FCNStudioError(
                    f"Out of memory on the CPU even with {MIN_TILE} px tiles for a {w}x{h} "
                    "image; close other programs or use a smaller image"
                )

    @staticmethod
    def _note(messages: list[str], message: str, cause: str) -> None:
        messages.append(message)
        log.warning("%s (%s)", message, cause)

    def _run_chunk(
        self,
        images: list[np.ndarray],
        variants: tuple[str, ...],
        device: torch.device,
        tile: int,
        overlap: int,
        report: Callable[[float], None],
        cancel: CancelFn | None,
        messages: list[str],
    ) -> list[Prediction]:
        """One attempt at a chunk on ``device`` (the model is moved there if needed)."""
        start = time.perf_counter()
        moved = device != self.device
        if moved:
            self.model.to(device)
        try:
            with torch.inference_mode():
                batch = self._upload(images, device)
                scores = self._scores(batch, variants, tile, overlap, report, cancel)
                del batch
                outputs = [
                    {v: _summarize(s[n]) for v, s in scores.items()} for n in range(len(images))
                ]
                del scores
        finally:
            if moved:
                self._restore_model(messages)
        seconds = (time.perf_counter() - start) / len(images)
        h, w = images[0].shape[:2]
        return [
            Prediction(
                outputs=out,
                image_size=(h, w),
                device=str(device),
                seconds=seconds,
                tiled=max(h, w) > tile,
                messages=list(messages),
            )
            for out in outputs
        ]

    def _restore_model(self, messages: list[str]) -> None:
        """Move the model back to its device after a CPU fallback (or stay on the CPU)."""
        try:
            self.model.to(self.device)
        except Exception as exc:
            if not _is_oom(exc):
                raise
            cause = str(exc).splitlines()[0]
            self.model.to("cpu")
            _free_cache(self.device)
            self._note(
                messages,
                f"{_device_label(self.device)} out of memory: the model stays on the CPU",
                cause,
            )
            self.device = torch.device("cpu")

    @staticmethod
    def _upload(images: list[np.ndarray], device: torch.device) -> torch.Tensor:
        """Stack HWC uint8 images into an ``(N, 3, H, W)`` uint8 tensor on ``device``."""
        host = torch.from_numpy(np.stack(images))  # (N, H, W, 3)
        if device.type == "cuda":
            host = host.pin_memory()
        return host.to(device, non_blocking=True).permute(0, 3, 1, 2)

    def _scores(
        self,
        batch: torch.Tensor,
        variants: tuple[str, ...],
        tile: int,
        overlap: int,
        report: Callable[[float], None],
        cancel: CancelFn | None,
    ) -> dict[str, torch.Tensor]:
        """Float32 score maps ``(N, C, H, W)`` of a batch, whole or blended from tiles."""
        n, _, h, w = batch.shape
        if cancel is not None and cancel():
            raise Cancelled("Prediction cancelled")
        if max(h, w) <= tile:
            out = {v: s.float() for v, s in self._forward(batch, variants).items()}
            report(1.0)
            return out
        ys, xs = tile_spans(h, tile, overlap), tile_spans(w, tile, overlap)
        wy, wx = _blend_weights(ys, batch.device), _blend_weights(xs, batch.device)
        acc: dict[str, torch.Tensor] = {}
        count, total = 0, len(ys) * len(xs)
        for (y0, y1), wyk in zip(ys, wy, strict=True):
            for (x0, x1), wxk in zip(xs, wx, strict=True):
                if count and cancel is not None and cancel():
                    raise Cancelled("Prediction cancelled")
                out = self._forward(batch[:, :, y0:y1, x0:x1], variants)
                weight = wyk[:, None] * wxk[None, :]
                for v, s in out.items():
                    if v not in acc:
                        acc[v] = torch.zeros(
                            (n, s.shape[1], h, w), dtype=torch.float32, device=batch.device
                        )
                    acc[v][:, :, y0:y1, x0:x1].addcmul_(s.float(), weight)
                del out
                count += 1
                report(count / total)
        return acc


def _scaled(report: Callable[[float], None], k: int, n: int) -> Callable[[float], None]:
    """Report fractions of the ``k``-th of ``n`` equal parts of a task."""
    return lambda fraction: report((k + min(1.0, fraction)) / n)


def _summarize(scores: torch.Tensor) -> VariantOutput:
    """Softmax, argmax, confidence and entropy of ``(C, H, W)`` scores, on their device."""
    c, h, w = scores.shape
    probs = np.empty((c, h, w), dtype=np.float16)
    labels = np.empty((h, w), dtype=np.uint8)
    confidence = np.empty((h, w), dtype=np.float32)
    entropy = np.empty((h, w), dtype=np.float32)
    log_c = math.log(c) if c > 1 else 1.0
    rows = max(1, _SUMMARY_ELEMENTS // (w * c))
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        p = torch.softmax(scores[:, r0:r1].float(), dim=0)
        conf, lab = p.max(dim=0)
        ent = (torch.special.entr(p).sum(dim=0) / log_c).clamp_(0.0, 1.0)
        torch.from_numpy(probs)[:, r0:r1].copy_(p.half())
        torch.from_numpy(labels)[r0:r1].copy_(lab.to(torch.uint8))
        torch.from_numpy(confidence)[r0:r1].copy_(conf)
        torch.from_numpy(entropy)[r0:r1].copy_(ent)
    return VariantOutput(probs=probs, labels=labels, confidence=confidence, entropy=entropy)
