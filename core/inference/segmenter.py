"""Inference: segment RGB images with an FCN, streamed exactly, with progress and cancel.

A :class:`Segmenter` wraps a model and its :class:`~core.checkpoints.checkpoint.ModelInfo`. Its
:meth:`~Segmenter.predict` returns a :class:`~core.inference.results.Prediction`: per variant
(32s, 16s, 8s) the fused score map before the final upsampling, full-resolution labels and
confidence, and whole-image sums; probabilities and entropy of any region on demand.

* Every image is streamed through the network in bands of rows
  (:mod:`core.inference.streaming`): exactly the untiled network's result, its work done
  once, with a band's activations in memory. The band height ("tile size") is measured per
  model and device (:mod:`core.inference.tuning`) unless given.
* Tiles (bands of the image) finish in order, the region in view first when one is given;
  ``on_tile`` is called as each lands and ``cancel`` is polled before each band
  (:mod:`core.inference.tiling`). :meth:`~Segmenter.preview` segments a downscaled copy.
* Out of memory on the GPU, a prediction is retried with half-height bands (down to 32
  rows), then on the CPU; each step is recorded in :attr:`Prediction.messages` and logged.

The runtime backends (:mod:`core.inference.runtime`) return full-resolution scores only;
:meth:`~Segmenter.scores` runs them. Streaming runs the model's own layers, channels_last,
fp32 (fp16 trunk on CUDA), or as they are with ``backend="eager"``.

A Segmenter is not thread-safe: use one per thread (or serialize the calls).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from core.checkpoints.checkpoint import ModelInfo, load_checkpoint
from core.errors import Cancelled, CheckpointError, ClassCountError, FCNStudioError
from core.inference.devices import pick_device
from core.inference.inputs import Progress, ProgressFn, as_rgb, check_variants, scaled
from core.inference.memory import device_label, free_cache, is_oom
from core.inference.results import Prediction, Region, VariantOutput
from core.inference.runner import StreamRunner
from core.inference.runtime import Backend, select_backend
from core.inference.runtime.options import parse_backend
from core.inference.streaming import NotStreamable, StreamGeometry
from core.inference.tiling import TileFn
from core.paths import default_model_path
from core.variants import VARIANTS

__all__ = ["PREVIEW_SIDE", "Prediction", "Region", "Segmenter", "VariantOutput", "as_rgb"]

log = logging.getLogger(__name__)

MIN_BAND = 32
"""The shortest band the out-of-memory fallback tries before moving to the CPU."""
PREVIEW_SIDE = 448
"""The long side of the downscaled copy :meth:`Segmenter.preview` segments."""

CancelFn = Callable[[], bool]


# --------------------------------------------------------------------------- segmenter


class Segmenter:
    """Runs an FCN on RGB images, streamed (see the module docstring)."""

    def __init__(
        self,
        model: nn.Module,
        info: ModelInfo,
        *,
        device: str | torch.device | None = None,
        tile_size: int | None = None,
        backend: str | None = None,
        memory_budget: int | None = None,
    ) -> None:
        """Put ``model`` in eval mode on ``device`` (None: "auto", see :func:`pick_device`).

        Args:
            model: The FCN.
            info: Its metadata (classes, preprocessing).
            device: Where to run it.
            tile_size: Rows per band (None: the fastest measured for the model and device).
            backend: The runtime of :meth:`scores` (see :mod:`core.inference.runtime`); None
                reads ``FCN_STUDIO_BACKEND``. "eager" also streams the layers as they are
                (NCHW fp32); other choices stream channels_last (fp16 trunk on CUDA).
            memory_budget: Bytes a band's activations may take (None: see
                :func:`~core.inference.tuning.band_cap`).

        Raises:
            FCNStudioError: Bad tile settings, backend choice or device, a model that cannot
                be streamed, or one whose class count differs from ``info``'s.
        """
        if tile_size is not None and tile_size < MIN_BAND:
            raise FCNStudioError(f"tile_size must be at least {MIN_BAND}, not {tile_size}")
        config = getattr(model, "config", None)
        if config is not None and getattr(config, "num_classes", None) != info.num_classes:
            raise ClassCountError(
                f"The model has {config.num_classes} classes, its info {info.num_classes}"
            )
        if info.num_classes > 255:
            raise FCNStudioError(
                f"{info.num_classes} classes do not fit uint8 labels (at most 255; 255 is void)"
            )
        self.notes: list[str] = []
        """What of the requested runtime predictions do not use, for logs and UIs."""
        try:
            spec = parse_backend(backend)
        except ValueError as exc:
            if backend is not None:
                raise FCNStudioError(str(exc)) from exc
            spec = None
            self.notes.append(f"{exc}: using auto")
        if spec is not None and spec.name == "eager" and spec.source != "default":
            self.notes.append(f"eager forced by {spec.source}")
        if spec is not None and spec.name.startswith("onnxruntime"):
            self.notes.append(f"{spec.name} computes Segmenter.scores(); predictions stream "
                              "the model's PyTorch layers")
        self.device = pick_device(device)
        self.model = model.eval().to(self.device)
        self.info = info
        self._preference = backend
        self._backend: Backend | None = None
        try:
            StreamGeometry(self.model, 64, 64)
        except NotStreamable as exc:
            raise FCNStudioError(f"This model cannot be streamed: {exc}") from exc
        self.runner = StreamRunner(
            self.model, info, eager=spec is not None and spec.name == "eager",
            tile_size=None if tile_size is None else int(tile_size), memory_budget=memory_budget)

    @property
    def tile_size(self) -> int | None:
        """Rows per band (None: measured per model and device)."""
        return self.runner.tile_size

    @property
    def backend(self) -> Backend:
        """The runtime backend of :meth:`scores` (made on first use)."""
        if self._backend is None:
            try:
                self._backend = select_backend(
                    self.model, self.device, self._preference,
                    preprocessing=self.info.preprocessing)
            except ValueError as exc:
                raise FCNStudioError(str(exc)) from exc
        return self._backend

    @property
    def backend_notes(self) -> list[str]:
        """Why the runtime backend left features out or fell back to eager."""
        return list(self.backend.notes)

    @property
    def description(self) -> str:
        """How predictions run, e.g. "streamed bands (fp32, channels_last)"."""
        return self.runner.description(self.device)

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
        on_tile: TileFn | None = None,
        first: Region | None = None,
    ) -> Prediction:
        """Segment one ``H x W x 3`` uint8 RGB image (gray and RGBA are accepted too).

        Args:
            image: The image.
            variants: Variants to compute (a subset of 32s, 16s, 8s).
            progress: Called with the fraction done (0..1], after each band; ends at 1.0.
            cancel: Polled before each band; when it returns True, :class:`Cancelled` is
                raised.
            on_tile: Called with the prediction (filled so far) and each tile as it
                finishes; the tile's labels, confidence and fused maps are final.
            first: The region to finish first (e.g. the part in view).

        Raises:
            FCNStudioError: A bad image or variant; out of memory even on the CPU.
            Cancelled: ``cancel()`` returned True.
        """
        return self.predict_batch([image], variants=variants, progress=progress,
                                  cancel=cancel, on_tile=on_tile, first=first)[0]

    def predict_batch(
        self,
        images: Sequence[np.ndarray],
        *,
        variants: str | Iterable[str] = VARIANTS,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
        batch_size: int = 8,
        on_tile: TileFn | None = None,
        first: Region | None = None,
    ) -> list[Prediction]:
        """Segment several images; images of equal size that fit one band run together.

        A batch holds at most ``batch_size`` images; taller images run alone. Arguments are
        as in :meth:`predict`; the results are in the order of ``images``.
        """
        wanted = check_variants(variants)
        rgb = [as_rgb(img) for img in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(rgb):
            groups.setdefault(img.shape[:2], []).append(i)
        chunks: list[list[int]] = []
        for (h, w), idx in groups.items():
            single = h <= self.runner.band(h, w, self.device)
            n = max(1, min(batch_size, (1 << 20) // (h * w))) if single else 1
            chunks += [idx[k : k + n] for k in range(0, len(idx), n)]

        tracker = Progress(progress, len(rgb))
        results: list[Prediction | None] = [None] * len(rgb)
        for chunk in chunks:
            if cancel is not None and cancel():
                raise Cancelled("Prediction cancelled")
            preds = self._predict_chunk([rgb[i] for i in chunk], wanted,
                                        tracker.chunk(len(chunk)), cancel, [], on_tile, first)
            for i, pred in zip(chunk, preds, strict=True):
                results[i] = pred
            tracker.finish_chunk(len(chunk))
        return [r for r in results if r is not None]

    def preview(self, image: np.ndarray, *, variants: str | Iterable[str] = VARIANTS,
                side: int = PREVIEW_SIDE) -> Prediction:
        """Segment a copy of ``image`` downscaled to ``side`` pixels on its long side (the
        image itself when it is smaller): a quick first look at a large image.

        The result's :attr:`~Prediction.image_size` is the copy's, its
        :attr:`~Prediction.source_size` the image's.
        """
        rgb = as_rgb(image)
        h, w = rgb.shape[:2]
        scale = side / max(h, w)
        if scale >= 1:
            return self.predict(rgb, variants=variants)
        small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA)
        pred = self.predict(small, variants=variants)
        pred.source_size = (h, w)
        return pred

    def scores(self, image: np.ndarray, variants: str | Iterable[str] = VARIANTS
               ) -> dict[str, torch.Tensor]:
        """Full-resolution scores ``{variant: (C, H, W)}`` of one image through the runtime
        backend, untiled (for comparisons; predictions stream instead)."""
        batch = torch.from_numpy(as_rgb(image)).to(self.device).permute(2, 0, 1)[None]
        with torch.inference_mode():
            x = self.info.preprocessing(batch).contiguous()
            out = self.backend(x, check_variants(variants))
        return {v: s[0].float() for v, s in out.items()}

    # ------------------------------------------------------------------ internals

    def _predict_chunk(
        self,
        images: list[np.ndarray],
        variants: tuple[str, ...],
        report: Callable[[float], None],
        cancel: CancelFn | None,
        messages: list[str],
        on_tile: TileFn | None,
        first: Region | None,
    ) -> list[Prediction]:
        """Predict equal-size images together, stepping down on out-of-memory errors."""
        device = self.device
        h, w = images[0].shape[:2]
        band = self.runner.band(h, w, device)
        while True:
            moved = device != self.device
            try:
                if moved:
                    self.model.to(device)
                try:
                    return self.runner.run(images, variants, device, band, report, cancel,
                                           messages, on_tile, first)
                finally:
                    if moved:
                        self._restore_model(messages)
            except Exception as exc:  # only out-of-memory errors are handled
                if not is_oom(exc):
                    raise
                cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            # outside the except block: the failed attempt's tensors are released
            free_cache(device)
            label = device_label(device)
            if len(images) > 1:
                self._note(messages, f"{label} out of memory with a batch of {len(images)}: "
                           "predicting one image at a time", cause)
                out: list[Prediction] = []
                for k, img in enumerate(images):
                    out += self._predict_chunk([img], variants, scaled(report, k, len(images)),
                                               cancel, list(messages), on_tile, first)
                return out
            if min(band, h) > MIN_BAND:
                band = max(MIN_BAND, min(band, h) // 2 // MIN_BAND * MIN_BAND)
                self._note(messages, f"{label} out of memory: fell back to {band}-row bands",
                           cause)
            elif device.type != "cpu":
                device = torch.device("cpu")
                band = self.runner.band(h, w, device)
                self._note(messages, f"{label} out of memory: fell back to the CPU", cause)
            else:
                raise FCNStudioError(
                    f"Out of memory on the CPU even with {MIN_BAND}-row bands for a {w}x{h} "
                    "image; close other programs or use a smaller image"
                )

    @staticmethod
    def _note(messages: list[str], message: str, cause: str) -> None:
        messages.append(message)
        log.warning("%s (%s)", message, cause)

    def _restore_model(self, messages: list[str]) -> None:
        """Move the model back to its device after a CPU fallback (or stay on the CPU)."""
        try:
            self.model.to(self.device)
        except Exception as exc:
            if not is_oom(exc):
                raise
            cause = str(exc).splitlines()[0]
            self.model.to("cpu")
            free_cache(self.device)
            self._note(
                messages,
                f"{device_label(self.device)} out of memory: the model stays on the CPU",
                cause,
            )
            self.device = torch.device("cpu")
