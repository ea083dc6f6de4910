"""Resumable training state (optimizer buffers, iteration, RNG) as safetensors + JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from core.atomic import atomic_path
from core.errors import CheckpointError

_KEY = "fcn_studio_train_state"


def save_train_state(
    path: str | os.PathLike[str], optimizer: torch.optim.Optimizer, iteration: int,
    extra: dict | None = None,
) -> None:
    """Write the optimizer's state and the iteration atomically (tensors, never pickles)."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
    scalars: dict[str, dict] = {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            if isinstance(value, torch.Tensor):
                tensors[f"opt.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    meta = {"iteration": iteration, "param_groups": sd["param_groups"], "scalars": scalars,
            "extra": extra or {}}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={_KEY: json.dumps(meta)})


def load_train_state(path: str | os.PathLike[str], optimizer: torch.optim.Optimizer) -> dict:
    """Restore the optimizer from ``path``; return the metadata (iteration, extra)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = json.loads((f.metadata() or {})[_KEY])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise CheckpointError(f"Cannot resume from {path}: {exc}") from exc
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for idx, values in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(values)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"{path} does not fit this optimizer: {exc}") from exc
    _match_layouts(optimizer)
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"])
    return meta


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
