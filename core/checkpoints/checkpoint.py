"""Checkpoints: one safetensors file holding the weights and, in its header, JSON metadata.

The metadata carries what the weights mean: class names and colors, the architecture, the
preprocessing, the training arguments, the metrics history and the parent checkpoint. Loading
reads tensors and JSON only: it never executes code. Writes are atomic.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from core.atomic import atomic_path
from core.checkpoints.header import METADATA_KEY, metadata_json
from core.checkpoints.validate import check_header_shapes, check_metadata, check_tensors
from core.data.palette import VOC_PALETTE
from core.errors import CheckpointError, ClassCountError
from core.jsonio import loads
from core.models.fcn import FCN, FCNConfig
from core.models.preprocess import IMAGENET, Preprocessing

FORMAT = "fcn-studio/1"


@dataclass
class ModelInfo:
    """What a checkpoint's weights mean; stored as JSON in the safetensors header."""

    class_names: list[str]
    config: FCNConfig
    preprocessing: Preprocessing = IMAGENET
    colors: list[tuple[int, int, int]] = field(default_factory=list)
    name: str = ""
    description: str = ""
    training: dict = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)
    parent: str | None = None
    id: str = ""
    created: str = ""

    def __post_init__(self) -> None:
        if len(self.class_names) != self.config.num_classes:
            raise ClassCountError(
                f"{len(self.class_names)} class names for a model of "
                f"{self.config.num_classes} classes"
            )
        if not self.colors:
            self.colors = [tuple(int(c) for c in VOC_PALETTE[i]) for i in range(len(self))]
        if len(self.colors) != len(self.class_names):
            raise ClassCountError(
                f"{len(self.colors)} colors for {len(self.class_names)} classes"
            )

    def __len__(self) -> int:
        return len(self.class_names)

    @property
    def num_classes(self) -> int:
        """Number of classes the model predicts."""
        return self.config.num_classes

    def latest_metrics(self) -> dict | None:
        """The most recent entry of the metrics history, if any."""
        return self.metrics[-1] if self.metrics else None

    def to_json(self) -> str:
        """Serialize to the JSON stored in the checkpoint header."""
        d = asdict(self)
        d["config"] = self.config.to_dict()
        d["preprocessing"] = self.preprocessing.to_dict()
        d["format"] = FORMAT
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "checkpoint") -> ModelInfo:
        """Parse the header JSON; a malformed header is a :class:`CheckpointError`."""
        d = loads(text, source, CheckpointError, "FCN Studio metadata of")
        try:
            if not isinstance(d, dict):
                raise TypeError("not a JSON object")
            if d.pop("format", None) != FORMAT:
                raise ValueError("unknown format")
            check_metadata(d, source)
            d["config"] = FCNConfig.from_dict(d["config"])
            d["preprocessing"] = Preprocessing.from_dict(d["preprocessing"])
            d["colors"] = [tuple(int(v) for v in c) for c in d.get("colors", [])]
            return cls(**d)
        except CheckpointError as exc:
            if str(exc).startswith(source):
                raise
            raise type(exc)(f"{source}: {exc}") from exc
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
            raise CheckpointError(f"{source} has malformed FCN Studio metadata: {exc}") from exc


def weights_id(state: dict[str, torch.Tensor]) -> str:
    """A short content hash of a state dict (names, shapes and values)."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def stamp_info(model: FCN, info: ModelInfo) -> tuple[dict[str, torch.Tensor], ModelInfo]:
    """``model``'s weights (CPU, contiguous) and ``info`` with their id and creation time."""
    if model.config != info.config:
        raise CheckpointError(f"model config {model.config} differs from info {info.config}")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    info = replace(
        info,
        id=weights_id(state),
        created=info.created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    return state, info


def save_checkpoint(path: str | os.PathLike[str], model: FCN, info: ModelInfo) -> ModelInfo:
    """Write ``model``'s weights and ``info`` atomically; return the info as saved (with id)."""
    state, info = stamp_info(model, info)
    with atomic_path(path) as tmp:  # a full disk or read-only folder: WriteError
        save_file(state, str(tmp), metadata={METADATA_KEY: info.to_json()})
    return info


def read_info(path: str | os.PathLike[str]) -> ModelInfo:
    """Read only a checkpoint's metadata (cheap: the header, not the weights)."""
    return ModelInfo.from_json(metadata_json(path), source=str(path))


def load_checkpoint(
    path: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> tuple[FCN, ModelInfo]:
    """Build the model a checkpoint describes and load its weights (no code is executed)."""
    path = Path(path)
    info = read_info(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
            check_header_shapes(shapes, info.config, str(path))
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} is corrupt: {exc}") from exc
    try:
        model = FCN(info.config)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: the metadata describes no valid model: {exc}") from exc
    load_state(model, state, source=str(path))
    return model.to(device), info


def load_state(model: FCN, state: dict[str, torch.Tensor], source: str = "weights") -> None:
    """Load weights by layer name, with clear errors for missing, extra or misshapen layers.

    Final upsampling layers a reference net lacks (an FCN-8s file has no ``upscore``) keep
    their fixed bilinear weights.
    """
    check_tensors(state, source)
    own = model.state_dict()
    optional = {"upscore.weight", "upscore16.weight"}
    missing = sorted(set(own) - set(state) - optional)
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing layers {missing[:6]}{' ...' if len(missing) > 6 else ''}")
        if unexpected:
            parts.append(f"unexpected layers {unexpected[:6]}")
        raise CheckpointError(f"{source} does not fit an FCN: {'; '.join(parts)}")
    for key, value in state.items():
        if own[key].shape != value.shape:
            if key.startswith(("score_", "upscore")) and own[key].shape[0] != value.shape[0]:
                raise ClassCountError(
                    f"{source}: layer {key} has {value.shape[0]} classes, the model "
                    f"expects {own[key].shape[0]}"
                )
            raise CheckpointError(
                f"{source}: layer {key} has shape {tuple(value.shape)}, expected "
                f"{tuple(own[key].shape)}"
            )
    model.load_state_dict(state, strict=False)
