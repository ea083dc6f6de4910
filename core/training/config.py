"""Training configuration and the named presets (the paper's, the reference "heavy" one...)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

from core.errors import ConfigError
from core.models.fcn import VARIANTS

MIN_CROP = 32
"""The smallest training crop (the trunk downsamples by 32)."""


def _number(value: object, name: str, lo: float | None = None, hi: float | None = None,
            *, lo_open: bool = False, integer: bool = False) -> None:
    """``value`` must be a finite number (an integer when ``integer``) in ``lo..hi``."""
    kinds = (int,) if integer else (int, float)
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    if ok and not integer:
        ok = math.isfinite(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value <= hi
    if not ok:
        kind = "an integer" if integer else "a finite number"
        bounds = ""
        if lo is not None:
            bounds = f" {'>' if lo_open else '>='} {lo:g}"
        if hi is not None:
            bounds += f"{' and' if bounds else ''} <= {hi:g}"
        raise ConfigError(f"{name} must be {kind}{bounds}, not {value!r}")


def check_run_options(*, width: float | None = None, dropout: float | None = None,
                      threads: int | None = None) -> None:
    """Check the model and process options of a training run (the CLI's --width...).

    Raises:
        ConfigError: A value is out of range (width in (0, 4], dropout in [0, 1], threads
            at least 1), naming the option.
    """
    if width is not None:
        _number(width, "width", 0, 4, lo_open=True)
    if dropout is not None:
        _number(dropout, "dropout", 0, 1)
    if threads is not None:
        _number(threads, "threads", 1, integer=True)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run; stored in the checkpoint metadata.

    Attributes:
        preset: the name of the preset these values started from.
        optimizer: "sgd" or "adam" (AdamW when weight_decay > 0).
        lr: base learning rate (biases get ``lr * bias_lr_mult``).
        momentum: SGD momentum (Adam's beta1 is left at 0.9).
        weight_decay: L2 penalty on weights (not on biases, as in the reference solvers).
        bias_lr_mult: learning-rate multiplier for biases (2 in the paper).
        reduction: "mean" (normalized loss) or "sum" (the heavy solvers' unnormalized loss).
        batch_size: images per iteration (per process under torchrun).
        iterations: optimizer steps.
        variant_weights: loss weight per output; all three at once is HED-style supervision.
        stage: the paper's staged training: train only this output; entering 16s/8s zeroes
            the new skip's score layer (score_pool4 / score_pool3).
        crop_size: training crop (masks padded with 255); None trains on whole images.
        scale: random rescaling range of the training images.
        hflip: random horizontal flips.
        schedule: "fixed", "poly" (power 0.9) or "cosine".
        warmup: iterations of linear warm-up.
        learn_final_upsampling / learn_skip_upsampling: train the deconvolutions.
        amp: "auto" (bf16 autocast on CUDA), "bf16" or "off".
        val_every / checkpoint_every: iterations between validation / checkpoint writes
            (0: only at the end).
        seed: seeds data order, augmentation and init.
        workers: DataLoader worker processes.
    """

    preset: str = "compact"
    optimizer: str = "adam"
    lr: float = 2e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    bias_lr_mult: float = 2.0
    reduction: str = "mean"
    batch_size: int = 8
    iterations: int = 2000
    variant_weights: dict[str, float] = field(
        default_factory=lambda: {"32s": 1.0, "16s": 1.0, "8s": 1.0}
    )
    stage: str | None = None
    crop_size: int | None = 192
    scale: tuple[float, float] = (0.75, 1.25)
    hflip: bool = True
    schedule: str = "poly"
    warmup: int = 50
    learn_final_upsampling: bool = False
    learn_skip_upsampling: bool = True
    amp: str = "auto"
    val_every: int = 0
    checkpoint_every: int = 500
    seed: int = 0
    workers: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.preset, str):
            raise ConfigError(f"preset must be a name, not {self.preset!r}")
        for name, allowed in (("optimizer", ("sgd", "adam")),
                              ("schedule", ("fixed", "poly", "cosine")),
                              ("reduction", ("mean", "sum")), ("amp", ("auto", "bf16", "off"))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, "
                                  f"not {getattr(self, name)!r}")
        if self.stage is not None and self.stage not in VARIANTS:
            raise ConfigError(f"stage must be one of {VARIANTS}, not {self.stage!r}")
        if not isinstance(self.variant_weights, dict):
            raise ConfigError(f"variant_weights must map variants to weights, "
                              f"not {self.variant_weights!r}")
        unknown = set(self.variant_weights) - set(VARIANTS)
        if unknown:
            raise ConfigError(f"unknown variants in variant_weights: {sorted(unknown)}")
        for v, w in self.variant_weights.items():
            _number(w, f"the loss weight of {v}", 0)
        if self.stage is None and not any(self.variant_weights.values()):
            raise ConfigError("at least one loss weight must be positive (all are 0)")
        _number(self.iterations, "iterations", 1, integer=True)
        _number(self.batch_size, "batch_size", 1, integer=True)
        _number(self.lr, "lr", 0, lo_open=True)
        _number(self.momentum, "momentum", 0, 1)
        _number(self.weight_decay, "weight_decay", 0)
        _number(self.bias_lr_mult, "bias_lr_mult", 0)
        if self.crop_size is not None:
            _number(self.crop_size, "crop_size", MIN_CROP, integer=True)
        if not (isinstance(self.scale, (tuple, list)) and len(self.scale) == 2):
            raise ConfigError(f"scale must be (low, high), not {self.scale!r}")
        for bound in self.scale:
            _number(bound, "scale", 0, lo_open=True)
        if self.scale[0] > self.scale[1]:
            raise ConfigError(f"scale must be (low, high) with low <= high, not {self.scale}")
        for name in ("warmup", "val_every", "checkpoint_every", "seed", "workers"):
            _number(getattr(self, name), name, 0, integer=True)

    @property
    def loss_weights(self) -> dict[str, float]:
        """The per-variant loss weights actually used (the stage alone when staged)."""
        if self.stage is not None:
            return {self.stage: 1.0}
        return {v: float(self.variant_weights.get(v, 0.0)) for v in VARIANTS
                if self.variant_weights.get(v, 0.0)}

    def to_dict(self) -> dict:
        """JSON-ready form."""
        d = asdict(self)
        d["scale"] = list(self.scale)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Inverse of :meth:`to_dict` (unknown keys are ignored for forward compatibility)."""
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if "scale" in d:
            d["scale"] = tuple(d["scale"])
        return cls(**d)


_HEAVY_LR = {"32s": 1e-10, "16s": 1e-12, "8s": 1e-14}

PRESETS: dict[str, TrainConfig] = {
    # Compact models from scratch on a CPU: Adam, poly decay, all three outputs supervised.
    "compact": TrainConfig(),
    # The paper: SGD momentum 0.9, lr 1e-4, averaged loss, 2x lr on biases, batch 20.
    "paper": TrainConfig(
        preset="paper", optimizer="sgd", lr=1e-4, momentum=0.9, weight_decay=5e-4,
        reduction="mean", batch_size=20, schedule="fixed", warmup=0, crop_size=None,
        scale=(1.0, 1.0),
    ),
    # The reference "heavy" solvers: summed loss, batch 1, momentum 0.99, tiny fixed lr,
    # upsampling fixed.
    "heavy": TrainConfig(
        preset="heavy", optimizer="sgd", lr=1e-10, momentum=0.99, weight_decay=5e-4,
        reduction="sum", batch_size=1, schedule="fixed", warmup=0, crop_size=None,
        scale=(1.0, 1.0), learn_skip_upsampling=False, iterations=100_000,
    ),
    "adam": TrainConfig(preset="adam", optimizer="adam", lr=1e-4, weight_decay=0.0,
                        schedule="fixed", warmup=0),
}


def preset(name: str, **overrides) -> TrainConfig:
    """A named preset with ``overrides`` applied.

    For "heavy", the learning rate follows the stage (1e-10 / 1e-12 / 1e-14) unless given.
    """
    try:
        base = PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}") from None
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(overrides) - {f.name for f in fields(TrainConfig)}
    if unknown:
        raise ConfigError(f"unknown training settings: {sorted(unknown)}")
    if name == "heavy" and "lr" not in overrides:
        overrides["lr"] = _HEAVY_LR[overrides.get("stage") or "32s"]
    return replace(base, **overrides)
