"""Training configuration and the named presets (the paper's, the reference "heavy" one...)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

from core.models.fcn import VARIANTS


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
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be sgd or adam, not {self.optimizer!r}")
        if self.schedule not in ("fixed", "poly", "cosine"):
            raise ValueError(f"schedule must be fixed, poly or cosine, not {self.schedule!r}")
        if self.stage is not None and self.stage not in VARIANTS:
            raise ValueError(f"stage must be one of {VARIANTS}, not {self.stage!r}")
        unknown = set(self.variant_weights) - set(VARIANTS)
        if unknown:
            raise ValueError(f"unknown variants in variant_weights: {sorted(unknown)}")
        if self.iterations < 1 or self.batch_size < 1:
            raise ValueError("iterations and batch_size must be positive")

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
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}") from None
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if name == "heavy" and "lr" not in overrides:
        overrides["lr"] = _HEAVY_LR[overrides.get("stage") or "32s"]
    return replace(base, **overrides)
