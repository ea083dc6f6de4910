"""Resumable training state (weights, optimizer buffers, iteration, RNG) as safetensors + JSON.

The state file is self-contained: besides the optimizer it holds the model's weights and
metadata as of the same iteration, so a resume needs nothing else. The trainer writes it
before the checkpoint; a process killed at any moment leaves either the previous state or
the new one (each write is atomic), and :func:`resume_training` continues from whichever
it finds, whatever state ``model.safetensors`` was left in. Temporary files of killed
writers are removed when the folder is next saved or resumed.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from core.atomic import atomic_path, clean_stale_temps
from core.errors import CheckpointError
from core.fileio import check_regular_file, is_regular_file
from core.jsonio import loads

_KEY = "fcn_studio_train_state"
_INFO_KEY = "fcn_studio_model"
_WEIGHT = "model."


def save_train_state(
    path: str | os.PathLike[str], optimizer: torch.optim.Optimizer, iteration: int,
    extra: dict | None = None, *, model: torch.nn.Module | None = None, info=None,
):
    """Write the optimizer's state and the iteration atomically (tensors, never pickles).

    Args:
        path: The state file.
        optimizer: The optimizer whose state is saved.
        iteration: Optimizer steps done.
        extra: JSON-ready values stored with the state.
        model: When given (with ``info``), its weights and metadata are stored too, so the
            file alone resumes the run.
        info: The model's :class:`core.checkpoints.checkpoint.ModelInfo`.

    Returns:
        ``info`` as stored (with its weights id and creation time), or None without a model.
    """
    import json

    path = Path(path)
    clean_stale_temps(path.parent)
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
    scalars: dict[str, dict] = {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            if isinstance(value, torch.Tensor):
                tensors[f"opt.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    extra = dict(extra or {})
    metadata: dict[str, str] = {}
    stamped = None
    if model is not None and info is not None:
        from core.checkpoints.checkpoint import stamp_info

        weights, stamped = stamp_info(model, info)
        tensors.update({_WEIGHT + k: v for k, v in weights.items()})
        extra["model_id"] = stamped.id
        metadata[_INFO_KEY] = stamped.to_json()
    meta = {"iteration": iteration, "param_groups": sd["param_groups"], "scalars": scalars,
            "extra": extra}
    metadata[_KEY] = json.dumps(meta)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return stamped


def _read(path: Path) -> tuple[dict, dict[str, torch.Tensor], str | None]:
    """The metadata, the tensors and the stored model info JSON of a state file."""
    check_regular_file(path, CheckpointError, "training state")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"Cannot resume from {path}: {exc}") from exc
    if _KEY not in header:
        raise CheckpointError(f"Cannot resume from {path}: it is not a training state")
    meta = loads(header[_KEY], path, CheckpointError, "training state")
    if not (isinstance(meta, dict) and isinstance(meta.get("iteration"), int)
            and not isinstance(meta["iteration"], bool) and meta["iteration"] >= 0
            and isinstance(meta.get("param_groups"), list)
            and isinstance(meta.get("scalars", {}), dict)
            and isinstance(meta.get("extra", {}), dict)):
        raise CheckpointError(f"Cannot resume from {path}: malformed training state metadata")
    return meta, tensors, header.get(_INFO_KEY)


def load_train_state(path: str | os.PathLike[str], optimizer: torch.optim.Optimizer) -> dict:
    """Restore the optimizer from ``path``; return the metadata (iteration, extra).

    Raises:
        CheckpointError: The file is missing, corrupt, malformed, or does not fit
            ``optimizer``, naming the file.
    """
    path = Path(path)
    meta, tensors, _ = _read(path)
    try:
        state: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, idx, name = key.split(".", 2)
                state.setdefault(int(idx), {})[name] = value
        for idx, values in meta.get("scalars", {}).items():
            if not isinstance(values, dict):
                raise TypeError(f"scalars of parameter {idx} are not an object")
            state.setdefault(int(idx), {}).update(values)
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, RuntimeError) as exc:
        raise CheckpointError(f"{path} does not fit this optimizer: {exc}") from exc
    _match_layouts(optimizer)
    rng = tensors.get("rng.torch")
    if rng is not None:
        try:
            torch.set_rng_state(rng)
        except (RuntimeError, TypeError) as exc:
            raise CheckpointError(f"{path}: malformed random generator state") from exc
    return meta


def resume_training(state_path: str | os.PathLike[str], model_path: str | os.PathLike[str],
                    model, optimizer: torch.optim.Optimizer, device) -> tuple[int, object]:
    """Continue a run: load weights, optimizer and iteration; return (iteration, info).

    A state file written with the model (the current format) resumes on its own,
    whatever ``model_path`` holds (a kill between the two writes leaves an older or
    newer checkpoint). An older state without weights is paired with ``model_path`` by
    the model id it names.

    Raises:
        CheckpointError: Nothing to resume, or the files do not fit ``model``.
    """
    from core.checkpoints.checkpoint import ModelInfo, load_checkpoint, load_state

    state_path, model_path = Path(state_path), Path(model_path)
    clean_stale_temps(state_path.parent)
    if not is_regular_file(state_path):
        raise CheckpointError(f"Nothing to resume in {state_path.parent}: no "
                              f"{state_path.name} (and {model_path.name})")
    _, tensors, info_json = _read(state_path)
    if info_json is not None:
        info = ModelInfo.from_json(info_json, source=str(state_path))
        if info.config != model.config:
            raise CheckpointError(
                f"{state_path} has architecture {info.config}, not {model.config}")
        weights = {k[len(_WEIGHT):]: v for k, v in tensors.items() if k.startswith(_WEIGHT)}
        load_state(model, weights, source=str(state_path))
    else:
        if not is_regular_file(model_path):
            raise CheckpointError(f"Nothing to resume in {model_path.parent}: no "
                                  f"{model_path.name}")
        saved, info = load_checkpoint(model_path)
        if saved.config != model.config:
            raise CheckpointError(
                f"{model_path} has architecture {saved.config}, not {model.config}")
        load_state(model, saved.state_dict(), source=str(model_path))
    model.to(device)
    meta = load_train_state(state_path, optimizer)
    if info_json is None and meta.get("extra", {}).get("model_id") not in (None, info.id):
        raise CheckpointError(f"{state_path} does not belong to {model_path}")
    return int(meta["iteration"]), replace(info)


def _match_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give restored per-parameter buffers (Adam's moments, SGD's momentum) their
    parameter's memory format: files hold them contiguous, and channels_last parameters
    with NCHW buffers push the fused/foreach optimizers onto a slower path."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.dim() != 4 or p.is_contiguous() or not p.is_contiguous(
                    memory_format=torch.channels_last):
                continue
            state = optimizer.state.get(p, {})
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.shape == p.shape:
                    state[key] = value.contiguous(memory_format=torch.channels_last)
