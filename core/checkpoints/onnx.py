"""Export an FCN to ONNX with its 32s/16s/8s outputs and dynamic batch, height and width.

The graph's input ``input`` is a float32 ``(N, 3, H, W)`` tensor that is already
preprocessed (the checkpoint's :class:`~core.models.preprocess.Preprocessing`, stored in the
metadata), or, with ``uint8_input=True``, a uint8 RGB ``(N, 3, H, W)`` image that the graph
preprocesses itself. The outputs ``score_32s``, ``score_16s`` and ``score_8s`` are
``(N, num_classes, H, W)`` class scores (before softmax) of exactly the input's size.

The ONNX file's ``metadata_props`` hold ``class_names`` and ``colors`` (JSON lists),
``preprocessing`` (JSON), ``input_format`` (a sentence), ``outputs`` (JSON list) and
``fcn_studio`` (the checkpoint's whole metadata, JSON).

Uses the TorchScript-based exporter (``dynamo=False``): it needs no extra packages and, with
the crops written in terms of tensor sizes, keeps height and width dynamic.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from core.atomic import atomic_path
from core.checkpoints.checkpoint import ModelInfo, load_checkpoint
from core.errors import CheckpointError, FCNStudioError
from core.models.fcn import FCN
from core.models.preprocess import Preprocessing
from core.models.upsampling import GroupedUpsampling
from core.variants import VARIANTS

INPUT = "input"
"""The graph's image input."""


def output_name(variant: str) -> str:
    """The graph output holding ``variant``'s scores (``score_8s``...)."""
    return f"score_{variant}"


class OnnxFCN(nn.Module):
    """An FCN for export: a tuple of the requested outputs (optionally with preprocessing).

    The heads run with per-class upsamplers (:class:`~core.models.upsampling.GroupedUpsampling`)
    and crop with traced sizes, so height and width stay dynamic. ``features(x, *extra)``
    replaces the trunk when given (the border-reuse runtime feeds its rings as ``extra``
    inputs).
    """

    def __init__(self, model: FCN, variants: Sequence[str] = VARIANTS,
                 preprocessing: Preprocessing | None = None,
                 features: Callable[..., dict[str, torch.Tensor]] | None = None) -> None:
        super().__init__()
        self.model = model
        self.variants = tuple(v for v in VARIANTS if v in variants)
        self.upsampling = GroupedUpsampling(model)
        self.features = features
        self.preprocess = preprocessing is not None
        if preprocessing is not None:
            order = [2, 1, 0] if preprocessing.channel_order == "BGR" else [0, 1, 2]
            self.register_buffer("order", torch.tensor(order), persistent=False)
            shape = (1, 3, 1, 1)
            self.register_buffer("scale", torch.tensor(
                [1 / (preprocessing.divisor * s) for s in preprocessing.std]).view(shape),
                persistent=False)
            self.register_buffer("shift", torch.tensor(
                [m / s for m, s in zip(preprocessing.mean, preprocessing.std, strict=True)]
            ).view(shape), persistent=False)

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Scores of each requested variant, in 32s, 16s, 8s order."""
        if self.preprocess:
            x = x.float().index_select(1, self.order) * self.scale - self.shift
        feats = self.features(x, *extra) if self.features is not None else self.model.features(x)
        out = self.model.heads(feats, x.shape[-2:], self.variants, self.upsampling)
        return tuple(out[v] for v in self.variants)


def trace_onnx(module: OnnxFCN, args: tuple[torch.Tensor, ...], target: str | os.PathLike[str]
               | io.BytesIO, *, input_names: Sequence[str] = (INPUT,),
               dynamic_axes: dict[str, dict[int, str]] | None = None, opset: int = 17) -> None:
    """Export ``module`` with the TorchScript exporter: the one call of ``torch.onnx.export``.

    Outputs are named :func:`output_name`; the image input and every output get dynamic
    batch, height and width (``dynamic_axes`` adds the other inputs' dynamic axes).
    """
    outputs = [output_name(v) for v in module.variants]
    axes = {0: "batch", 2: "height", 3: "width"}
    was_training = module.model.training
    module.model.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notices
            torch.onnx.export(
                module, args, target if isinstance(target, io.BytesIO) else str(target),
                input_names=list(input_names), output_names=outputs, opset_version=opset,
                dynamo=False,
                dynamic_axes={INPUT: axes, **{o: axes for o in outputs}, **(dynamic_axes or {})},
            )
    finally:
        module.model.train(was_training)


def _input_format(info: ModelInfo, uint8_input: bool) -> str:
    p = info.preprocessing
    if uint8_input:
        return ("uint8 RGB image, NCHW (N, 3, H, W), values 0-255; the graph converts it to "
                f"{p.channel_order} and normalizes it ((x / {p.divisor:g} - mean) / std)")
    return (f"float32 NCHW (N, 3, H, W), already preprocessed: RGB 0-255 reordered to "
            f"{p.channel_order}, then (x / {p.divisor:g} - mean) / std with mean "
            f"{list(p.mean)} and std {list(p.std)} (the 'preprocessing' entry)")


def export_onnx(
    checkpoint_or_model: str | os.PathLike[str] | FCN,
    out_path: str | os.PathLike[str],
    *,
    info: ModelInfo | None = None,
    variants: Sequence[str] = VARIANTS,
    opset: int = 17,
    uint8_input: bool = False,
) -> Path:
    """Export a checkpoint (or a model and its ``info``) to ONNX, atomically.

    Args:
        checkpoint_or_model: an FCN Studio checkpoint path, or an :class:`FCN`.
        out_path: the ``.onnx`` file to write.
        info: the model's metadata when a model is given (required for it).
        variants: which outputs to export (``score_<variant>``).
        opset: ONNX opset version (11 or newer).
        uint8_input: take uint8 RGB images and preprocess inside the graph.

    Returns:
        The written file.
    """
    try:
        import onnx
    except ImportError as exc:
        raise FCNStudioError(
            "ONNX export needs the onnx package: pip install 'fcn-studio[onnx]'"
        ) from exc
    wanted = [v for v in VARIANTS if v in set(variants)]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or not wanted:
        raise FCNStudioError(f"variants must be among {list(VARIANTS)}, not {list(variants)}")
    if opset < 11:
        raise FCNStudioError(f"opset {opset} is too old for dynamic crops; use 11 or newer")
    if isinstance(checkpoint_or_model, FCN):
        if info is None:
            raise CheckpointError("exporting a model needs its ModelInfo (class names, "
                                  "preprocessing)")
        model = checkpoint_or_model
    else:
        model, info = load_checkpoint(checkpoint_or_model)

    wrapper = OnnxFCN(model, wanted, info.preprocessing if uint8_input else None)
    device = next(model.parameters()).device
    wrapper.to(device)
    dtype = torch.uint8 if uint8_input else torch.float32
    example = torch.zeros(1, 3, 64, 64, dtype=dtype, device=device)
    outputs = [output_name(v) for v in wanted]
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        trace_onnx(wrapper, (example,), tmp, opset=opset)
        proto = onnx.load(str(tmp))
        meta = {
            "class_names": json.dumps(info.class_names),
            "colors": json.dumps([list(c) for c in info.colors]),
            "preprocessing": json.dumps(info.preprocessing.to_dict()),
            "input_format": _input_format(info, uint8_input),
            "outputs": json.dumps(outputs),
            "fcn_studio": info.to_json(),
        }
        for k, v in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, v
        proto.doc_string = (f"FCN Studio model {info.name!r}: "
                            f"{', '.join(outputs)} for {info.num_classes} classes")
        onnx.save(proto, str(tmp))
    return out_path
