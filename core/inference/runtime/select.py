"""Choosing a backend for a model and a device (see :mod:`core.inference.runtime`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import nn

from core.inference.runtime.backend import Backend, EagerBackend
from core.inference.runtime.border import reached_macs
from core.inference.runtime.options import BackendSpec, parse_backend, parse_bool
from core.inference.runtime.torch_backend import TorchBackend, TorchOptions
from core.inference.runtime.wrappers import CostGate, GuardedBackend, Upgrade

__all__ = ["AUTO_MIN_GMAC", "AUTO_ORT_FROM_CHANNELS", "model_macs", "select_backend"]

log = logging.getLogger(__name__)

AUTO_MIN_GMAC = 0.25
"""``auto`` on the CPU runs calls under this many GMAC eagerly (option ``min_gmac``)."""

AUTO_ORT_FROM_CHANNELS = 3072
"""``auto`` on the CPU adds ONNX Runtime for models this wide (option ``ort_from_channels``;
the reference FCN has 4096: there it beats torch by 15%; at half width and below, torch
is faster)."""


def _model_device(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _spec(preference: str | BackendSpec | None, notes: list[str]) -> BackendSpec:
    if isinstance(preference, BackendSpec):
        return preference
    try:
        return parse_backend(preference)
    except ValueError as exc:
        if preference is not None:
            raise
        notes.append(f"{exc}: using auto")  # a bad environment variable must not stop the app
        return BackendSpec()


def model_macs(model: nn.Module) -> Callable[[int, int], float]:
    """``macs(height, width)``: the trunk's multiply-accumulates for one image (FCNs only)."""
    return lambda h, w: reached_macs(model, h, w)[0]


def _auto(model: nn.Module, device: torch.device, spec: BackendSpec, notes: list[str],
          preprocessing: Callable[[torch.Tensor], torch.Tensor] | None) -> Backend:
    options = dict(spec.options)
    if device.type == "cuda":
        return TorchBackend(model, device, TorchOptions.for_device(device).with_options(options))
    if device.type != "cpu":
        notes.append(f"no optimized path for {device.type.upper()}: eager")
        return EagerBackend(model, device)
    min_gmac = float(options.pop("min_gmac", AUTO_MIN_GMAC))
    ort_from = int(options.pop("ort_from_channels", AUTO_ORT_FROM_CHANNELS))
    fast: Backend = TorchBackend(
        model, device, TorchOptions(channels_last=True).with_options(options))
    if _widest(model) >= ort_from > 0:
        why = _ort_missing()
        if why is None:
            from core.inference.runtime.onnx import OnnxRuntimeBackend

            ort_backend = OnnxRuntimeBackend(model, preprocessing=preprocessing)
            fast = Upgrade(fast, ort_backend, ort_backend.prepare)
        else:
            notes.append(f"{why}: torch only")
    if min_gmac <= 0 or not hasattr(model, "_trunk"):
        return fast
    return CostGate(fast, model_macs(model), min_gmac * 1e9)


def _widest(model: nn.Module) -> int:
    """The most output channels of any convolution (4096 in the reference FCN's fc6/fc7)."""
    return max((m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)), default=0)


def _ort_missing() -> str | None:
    from core.inference.runtime.onnx import ort_available

    return ort_available()


def _ort_options(options: dict[str, str], name: str) -> dict:
    known = {"threads", "reuse", "min_agreement", "keep_fp32", "calibrate", "spin"}
    unknown = set(options) - known
    if unknown:
        raise ValueError(f"Unknown {name} options {sorted(unknown)}; known: {sorted(known)}")
    out: dict = {}
    if "threads" in options:
        out["threads"] = int(options["threads"])
    for key in ("reuse", "spin"):
        if key in options:
            out[key] = parse_bool(options[key], key)
    if "min_agreement" in options:
        out["min_agreement"] = float(options["min_agreement"])
    if "keep_fp32" in options:  # layer names joined by "+": keep_fp32=conv1_1+fc7
        out["keep_fp32"] = tuple(filter(None, options["keep_fp32"].split("+")))
    if "calibrate" in options:
        out["calibrate"] = options["calibrate"].lower()
    return out


def _make(model: nn.Module, device: torch.device, spec: BackendSpec, notes: list[str],
          preprocessing: Callable[[torch.Tensor], torch.Tensor] | None) -> Backend:
    name = spec.name
    if name == "eager":
        if spec.source != "default":
            notes.append(f"eager forced by {spec.source}")
        return EagerBackend(model, device)
    if name == "torch":
        opts = TorchOptions.for_device(device).with_options(spec.options)
        return TorchBackend(model, device, opts)
    if name.startswith("onnxruntime"):
        from core.inference.runtime.onnx import OnnxRuntimeBackend

        why = _ort_missing()
        if device.type != "cpu":
            why = f"ONNX Runtime backend runs on the CPU only, the model is on {device}"
        if why is not None:
            notes.append(f"{name} unavailable ({why}): eager")
            return EagerBackend(model, device)
        return OnnxRuntimeBackend(model, int8=name.endswith("int8"), preprocessing=preprocessing,
                                  **_ort_options(spec.options, name))
    return _auto(model, device, spec, notes, preprocessing)


def select_backend(
    model: nn.Module,
    device: torch.device | str | None = None,
    preference: str | BackendSpec | None = None,
    *,
    preprocessing: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Backend:
    """The backend to run ``model`` on ``device`` (None: where its weights are).

    Args:
        model: The FCN, in eval mode, already on ``device``.
        device: Its device.
        preference: A backend choice (see :mod:`core.inference.runtime.options`); None reads
            ``FCN_STUDIO_BACKEND`` and defaults to ``auto``.
        preprocessing: The model's input preprocessing (int8 calibration images use it).

    Returns:
        A :class:`GuardedBackend` around the chosen backend (falls back to eager, logging
        why, if it fails), or :class:`EagerBackend`.

    Raises:
        ValueError: ``preference`` names an unknown backend or option.
    """
    device = torch.device(device) if device is not None else _model_device(model)
    notes: list[str] = []
    spec = _spec(preference, notes)
    try:
        backend = _make(model, device, spec, notes, preprocessing)
    except ValueError:
        raise
    except Exception as exc:  # an optional dependency or feature that does not work here
        notes.append(f"{spec} unavailable ({type(exc).__name__}: {exc}): eager")
        backend = EagerBackend(model, device)
    for note in notes:
        log.info("inference backend: %s", note)
    if isinstance(backend, EagerBackend):
        backend = EagerBackend(model, device, notes)
        log.info("inference backend: eager on %s", device)
        return backend
    guarded = GuardedBackend(backend, notes)
    log.info("inference backend: %s on %s", guarded.description, device)
    return guarded
