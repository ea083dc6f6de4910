"""Reference FCN ``.caffemodel`` files -> an :class:`~core.models.fcn.FCN` and its metadata.

The file is parsed by :mod:`core.checkpoints.caffe_format`; its layers become
reference-named tensors (:func:`caffe_state`) that :func:`~core.checkpoints.reference.
build_reference_fcn` checks and loads. The at-once net's fixed ``Scale`` layers are checked
and recorded as the model's ``scale_skips``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from core.checkpoints.caffe_format import CaffeLayer, CaffeNet, read_net
from core.checkpoints.checkpoint import ModelInfo
from core.checkpoints.reference import DECONV_LAYERS, TRUNK_LAYERS, build_reference_fcn
from core.errors import CheckpointError
from core.models.fcn import AT_ONCE_SCALES as POOL_SCALES
from core.models.fcn import FCN

__all__ = ["AT_ONCE_SCALES", "caffe_state", "load_caffemodel"]

AT_ONCE_SCALES: dict[str, float] = {f"scale_{k}": v for k, v in POOL_SCALES.items()}
"""The at-once net's fixed Scale layers and their constant factor."""


def caffe_state(net: CaffeNet, source: str) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Reference-named tensors from a parsed net, and the at-once Scale factors if present.

    Blob 0 is ``<layer>.weight``, blob 1 ``<layer>.bias``; any further blob becomes
    ``<layer>.blob<i>`` so that it is reported as unexpected, never dropped silently.
    """
    state: dict[str, torch.Tensor] = {}
    scales: dict[str, float] = {}
    for layer in net.layers:
        if not layer.blobs:
            continue
        if layer.name in AT_ONCE_SCALES:
            scales[layer.name] = _scale_factor(layer, source)
            continue
        _check_type(layer, source)
        for i, blob in enumerate(layer.blobs):
            key = f"{layer.name}.{('weight', 'bias')[i] if i < 2 else f'blob{i}'}"
            if key in state:
                raise CheckpointError(f"{source}: layer {layer.name} appears twice")
            state[key] = torch.from_numpy(blob)
    return state, scales


def _check_type(layer: CaffeLayer, source: str) -> None:
    if layer.name in DECONV_LAYERS:
        allowed = {"Deconvolution"}
    elif layer.name in ("fc6", "fc7"):
        allowed = {"Convolution", "InnerProduct"}
    elif layer.name in TRUNK_LAYERS or layer.name.startswith("score_"):
        allowed = {"Convolution"}
    else:
        return  # reported as an unexpected layer
    if layer.type not in allowed:
        raise CheckpointError(
            f"{source}: layer {layer.name} is a {layer.type or 'untyped'} layer, expected "
            f"{' or '.join(sorted(allowed))}"
        )


def _scale_factor(layer: CaffeLayer, source: str) -> float:
    expected = AT_ONCE_SCALES[layer.name]
    values = layer.blobs[0] if len(layer.blobs) == 1 else None
    if values is None or values.size == 0 or not np.allclose(values, expected, rtol=1e-4, atol=0):
        got = "several blobs" if values is None else np.unique(values)[:4].tolist()
        raise CheckpointError(
            f"{source}: layer {layer.name} scales by {got}; FCN Studio supports only the "
            f"at-once net's fixed factor {expected}"
        )
    return expected


def load_caffemodel(
    path: str | os.PathLike[str],
    *,
    at_once: bool | None = None,
    class_names: Sequence[str] | None = None,
) -> tuple[FCN, ModelInfo]:
    """Read a reference FCN ``.caffemodel`` into an FCN and its :class:`ModelInfo`.

    The at-once net is recognized by its ``scale_pool4``/``scale_pool3`` layers or its file
    name (``fcn8s-atonce...``); ``at_once`` overrides the name (not the layers).
    """
    source = str(path)
    state, scales = caffe_state(read_net(path), source)
    if scales:
        missing = sorted(set(AT_ONCE_SCALES) - set(scales))
        if missing:
            raise CheckpointError(f"{source}: at-once net without layer {missing[0]}")
        if at_once is False:
            raise CheckpointError(
                f"{source} is an FCN-8s at-once net (it has scale_pool4 and scale_pool3); "
                "it cannot be loaded without its fixed skip scaling"
            )
        at_once = True
    return build_reference_fcn(state, source=source, at_once=at_once, class_names=class_names,
                               origin="caffe")
