"""Convert published FCN weights into FCN Studio checkpoints; the model CLI commands.

Accepted inputs (dispatched on the file extension):

- ``.caffemodel``: the reference Caffe nets (read by :mod:`core.checkpoints.caffe`, no Caffe
  needed).
- ``.pth`` / ``.pt`` / ``.pth.tar``: PyTorch state dicts with the reference layer names, as
  pytorch-fcn publishes them (``fcn32s_from_caffe.pth`` ...), raw or under
  ``"model_state_dict"`` / ``"state_dict"``. Read with ``torch.load(weights_only=True)`` only:
  a file that would need to run code is refused.
- ``.safetensors``: an FCN Studio checkpoint (validated and re-saved), or a plain safetensors
  state dict with the reference layer names.

``add_parser`` registers the ``convert``, ``download`` and ``export-onnx`` commands of
``python -m core``.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import CheckpointError

if TYPE_CHECKING:  # building the CLI must not import torch
    import torch

    from core.checkpoints.checkpoint import ModelInfo
    from core.models.fcn import FCN

STATE_DICT_KEYS: tuple[str, ...] = ("model_state_dict", "state_dict")
"""Keys under which training checkpoints keep the model's state dict."""


def input_format(path: str | os.PathLike[str]) -> str:
    """``"caffe"``, ``"torch"`` or ``"safetensors"`` from the file name."""
    name = Path(path).name.lower()
    if name.endswith(".caffemodel"):
        return "caffe"
    if name.endswith((".pth", ".pt", ".pth.tar")):
        return "torch"
    if name.endswith(".safetensors"):
        return "safetensors"
    raise CheckpointError(
        f"{path}: unsupported model format; expected .caffemodel, .pth, .pt or .safetensors"
    )


def read_torch_state(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], str]:
    """Tensors of a PyTorch weights file, loaded with ``weights_only=True`` (never runs code).

    Returns the state dict and where it was found (``"raw"`` or the container key).
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
    except OSError as exc:
        raise CheckpointError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    if head != b"PK" and head[:1] != b"\x80":  # a zip archive (torch.save) or a pickle
        raise CheckpointError(
            f"{path} is not a PyTorch weights file: torch.save writes a zip archive (or, in "
            "old versions, a pickle), and this file is neither (truncated, or another format?)"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", str(exc), re.DOTALL)
        reason = " ".join((detail.group(1) if detail else str(exc)).split())
        if "Unsupported global" in reason:
            raise CheckpointError(
                f"{path} was refused: loading it would run code or build arbitrary objects "
                f"({reason.split(' was not')[0]}). FCN Studio never executes model files."
            ) from exc
        raise CheckpointError(
            f"{path} is not a readable PyTorch weights file: {reason}"
        ) from exc
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        raise CheckpointError(f"{path} is not a readable PyTorch weights file: {exc}") from exc
    where = "raw"
    if isinstance(obj, dict):
        for key in STATE_DICT_KEYS:
            if isinstance(obj.get(key), dict):
                obj, where = obj[key], key
                break
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict")
    not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(
            f"{path}: entries {not_tensors[:6]} are not tensors; expected a state dict "
            f"(raw or under {' / '.join(STATE_DICT_KEYS)})"
        )
    state = {str(k): v for k, v in obj.items()}
    if all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
        where += " (module. prefix removed)"
    return state, where


def load_torch_weights(
    path: str | os.PathLike[str],
    *,
    at_once: bool | None = None,
    class_names: Sequence[str] | None = None,
) -> tuple[FCN, ModelInfo]:
    """An FCN from a pytorch-fcn style state dict (Caffe weights, so CAFFE preprocessing)."""
    from core.checkpoints.reference import build_reference_fcn

    state, where = read_torch_state(path)
    model, info = build_reference_fcn(state, source=str(path), at_once=at_once,
                                      class_names=class_names, origin="pytorch-fcn")
    if where != "raw":
        info.training["state_dict"] = where
    return model, info


def _load_safetensors(
    path: Path, at_once: bool | None, class_names: Sequence[str] | None
) -> tuple[FCN, ModelInfo]:
    from safetensors import SafetensorError, safe_open

    from core.checkpoints.checkpoint import METADATA_KEY, load_checkpoint
    from core.checkpoints.reference import build_reference_fcn

    try:
        with safe_open(str(path), framework="pt") as f:
            has_info = METADATA_KEY in (f.metadata() or {})
            state = {} if has_info else {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file: {exc}") from exc
    if not has_info:
        model, info = build_reference_fcn(state, source=str(path), at_once=at_once,
                                          class_names=class_names, origin="safetensors")
        return model, info
    model, info = load_checkpoint(path)
    if at_once is not None and at_once != model.config.scale_skips:
        raise CheckpointError(
            f"{path} is {'an' if model.config.scale_skips else 'not an'} at-once model; "
            "re-saving cannot change that"
        )
    if class_names is not None:
        info = replace(info, class_names=list(class_names))
    return model, info


def load_any(
    path: str | os.PathLike[str],
    *,
    at_once: bool | None = None,
    class_names: Sequence[str] | None = None,
) -> tuple[FCN, ModelInfo]:
    """Load any accepted model file (see the module docstring) into an FCN and its info."""
    path = Path(path)
    fmt = input_format(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    if fmt == "caffe":
        from core.checkpoints.caffe import load_caffemodel

        return load_caffemodel(path, at_once=at_once, class_names=class_names)
    if fmt == "torch":
        return load_torch_weights(path, at_once=at_once, class_names=class_names)
    return _load_safetensors(path, at_once, class_names)


def convert(
    in_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    at_once: bool | None = None,
    class_names: Sequence[str] | None = None,
    name: str | None = None,
) -> ModelInfo:
    """Convert ``in_path`` into an FCN Studio checkpoint at ``out_path`` (written atomically).

    Args:
        in_path: a ``.caffemodel``, ``.pth``/``.pt`` or ``.safetensors`` file.
        out_path: the ``.safetensors`` checkpoint to write.
        at_once: force (True) or forbid (False) the at-once skip scaling; None: detect it.
        class_names: the classes' names (default: VOC for 21 classes, else generic).
        name: the model name stored in the checkpoint (default: the input's stem).

    Returns:
        The metadata as saved (with the weights' id).
    """
    from core.checkpoints.checkpoint import save_checkpoint

    out_path = Path(out_path)
    if out_path.suffix.lower() != ".safetensors":
        raise CheckpointError(f"{out_path}: the converted checkpoint must be a .safetensors file")
    model, info = load_any(in_path, at_once=at_once, class_names=class_names)
    if name:
        info.name = name
    return save_checkpoint(out_path, model, info)
