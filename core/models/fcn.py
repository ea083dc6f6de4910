"""FCN-32s/16s/8s on a VGG16 trunk, with the reference nets' geometry and layer names.

One module holds every head, so one forward pass yields all three fused outputs. Layer names
(``conv1_1`` ... ``fc7``, ``score_fr``, ``score_pool4``, ``upscore2`` ...) follow the Caffe
reference and pytorch-fcn, so published weights load by name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from core.models.geometry import CoordMap, crop_offset
from core.models.upsampling import (
    FINAL_UPSAMPLERS,
    SKIP_UPSAMPLERS,
    Upsampling,
    bilinear_kernel,
    crop,
)
from core.variants import VARIANTS

VGG16_STAGES: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
SCORE_LAYERS: tuple[str, ...] = ("score_fr", "score_pool4", "score_pool3")
AT_ONCE_SCALES: dict[str, float] = {"pool4": 0.01, "pool3": 0.0001}
"""FCN-8s at-once: the fixed scaling of the pool features before their score layers."""
_LAYERS = Upsampling()


@dataclass(frozen=True)
class FCNConfig:
    """Architecture of an FCN; stored in every checkpoint.

    Attributes:
        num_classes: output classes (including background).
        width: channel multiplier of the VGG16 trunk and fc6/fc7 (1.0 = the reference nets).
        scale_skips: the at-once variant's fixed scaling of pool4 (0.01) and pool3 (0.0001).
        learn_final_upsampling: train upscore / upscore16 / upscore8 (the paper keeps them fixed).
        learn_skip_upsampling: train upscore2 / upscore_pool4 (the paper learns them).
        dropout: dropout probability after fc6 and fc7.
        conv1_padding: padding of conv1_1 (100 in the reference nets; 1 gives plain VGG16).
    """

    num_classes: int = 21
    width: float = 1.0
    scale_skips: bool = False
    learn_final_upsampling: bool = False
    learn_skip_upsampling: bool = True
    dropout: float = 0.5
    conv1_padding: int = 100

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be positive, not {self.num_classes}")
        if not 0 < self.width <= 4:
            raise ValueError(f"width must be in (0, 4], not {self.width}")

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FCNConfig:
        """Inverse of :meth:`to_dict`; unknown keys are rejected."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown FCN config keys: {sorted(unknown)}")
        return cls(**d)


def scaled_channels(channels: int, width: float) -> int:
    """Channels of a layer of the reference width ``channels`` at multiplier ``width``."""
    return max(1, round(channels * width))


def _deconv(channels: int, kernel_size: int, stride: int,
            device: torch.device | str | None) -> nn.ConvTranspose2d:
    """A class-to-class deconvolution (initialized bilinear by :meth:`FCN.reset_parameters`)."""
    return nn.ConvTranspose2d(channels, channels, kernel_size, stride=stride, bias=False,
                              device=device)


def add_vgg16_trunk(
    module: nn.Module, width: float, conv1_padding: int = 100, dropout: float = 0.5,
    device: torch.device | str | None = None,
) -> list[str]:
    """Add conv1_1 ... pool5, fc6, fc7 (with ReLU and dropout) to ``module``; return their names."""
    names: list[str] = []

    def add(name: str, layer: nn.Module) -> None:
        module.add_module(name, layer)
        names.append(name)

    in_ch = 3
    for stage, (ch, convs) in enumerate(VGG16_STAGES, start=1):
        ch = scaled_channels(ch, width)
        for i in range(1, convs + 1):
            pad = conv1_padding if (stage, i) == (1, 1) else 1
            add(f"conv{stage}_{i}", nn.Conv2d(in_ch, ch, 3, padding=pad, device=device))
            add(f"relu{stage}_{i}", nn.ReLU(inplace=True))
            in_ch = ch
        add(f"pool{stage}", nn.MaxPool2d(2, stride=2, ceil_mode=True))
    fc = scaled_channels(4096, width)
    add("fc6", nn.Conv2d(in_ch, fc, 7, device=device))
    add("relu6", nn.ReLU(inplace=True))
    add("drop6", nn.Dropout(dropout))
    add("fc7", nn.Conv2d(fc, fc, 1, device=device))
    add("relu7", nn.ReLU(inplace=True))
    add("drop7", nn.Dropout(dropout))
    return names


def run_trunk(module: nn.Module, names: list[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run the trunk layers ``names`` of ``module``; return pool3, pool4 and fc7."""
    feats: dict[str, torch.Tensor] = {}
    for name in names:
        x = getattr(module, name)(x)
        if name in ("pool3", "pool4"):
            feats[name] = x
    feats["fc7"] = x
    return feats


class FCN(nn.Module):
    """FCN-VGG16 with all three heads: ``forward(x)`` returns ``{"32s", "16s", "8s"}`` scores.

    Each output is a ``(N, num_classes, H, W)`` score map of exactly the input's size.
    """

    def __init__(self, config: FCNConfig | None = None, *,
                 device: torch.device | str | None = None) -> None:
        """Build the net; on the ``meta`` device (shapes only, no memory) it is not
        initialized."""
        super().__init__()
        self.config = config = config or FCNConfig()
        n = config.num_classes
        self._trunk = add_vgg16_trunk(self, config.width, config.conv1_padding, config.dropout,
                                      device)
        fc = scaled_channels(4096, config.width)
        self.score_fr = nn.Conv2d(fc, n, 1, device=device)
        self.score_pool4 = nn.Conv2d(scaled_channels(512, config.width), n, 1, device=device)
        self.score_pool3 = nn.Conv2d(scaled_channels(256, config.width), n, 1, device=device)
        self.upscore = _deconv(n, 64, 32, device)
        self.upscore2 = _deconv(n, 4, 2, device)
        self.upscore16 = _deconv(n, 32, 16, device)
        self.upscore_pool4 = _deconv(n, 4, 2, device)
        self.upscore8 = _deconv(n, 16, 8, device)

        self.offsets = self._derive_offsets()
        if torch.device(device or "cpu").type != "meta":
            self.reset_parameters()
        self.set_upsampling_trainable(
            final=config.learn_final_upsampling, skip=config.learn_skip_upsampling
        )

    def _layers_through(self, last: str) -> list[nn.Module]:
        names = self._trunk[: self._trunk.index(last) + 1]
        return [getattr(self, name) for name in names]

    def _derive_offsets(self) -> dict[str, int]:
        """Crop offsets from the layer geometry (reference values: 19; 5, 27; 9, 31)."""
        image = CoordMap()
        pool3 = image.chain(self._layers_through("pool3")).through(self.score_pool3)
        pool4 = image.chain(self._layers_through("pool4")).through(self.score_pool4)
        score = image.chain(self._layers_through("drop7")).through(self.score_fr)
        up2 = score.through(self.upscore2)
        up_pool4 = up2.through(self.upscore_pool4)
        return {
            "32s": crop_offset(score.through(self.upscore), image),
            "score_pool4": crop_offset(pool4, up2),
            "16s": crop_offset(up2.through(self.upscore16), image),
            "score_pool3": crop_offset(pool3, up_pool4),
            "8s": crop_offset(up_pool4.through(self.upscore8), image),
        }

    def reset_parameters(self) -> None:
        """Kaiming-initialize the trunk, zero the score layers, bilinear upsamplers."""
        for name in self._trunk:
            m = getattr(self, name)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        for name in SCORE_LAYERS:
            nn.init.zeros_(getattr(self, name).weight)
            nn.init.zeros_(getattr(self, name).bias)
        for name in (*FINAL_UPSAMPLERS.values(), *SKIP_UPSAMPLERS):
            layer = getattr(self, name)
            with torch.no_grad():
                layer.weight.copy_(bilinear_kernel(layer.in_channels, layer.kernel_size[0]))

    def set_upsampling_trainable(self, *, final: bool, skip: bool) -> None:
        """Freeze or unfreeze the final and the intermediate (skip) deconvolutions."""
        for name in FINAL_UPSAMPLERS.values():
            getattr(self, name).weight.requires_grad_(final)
        for name in SKIP_UPSAMPLERS:
            getattr(self, name).weight.requires_grad_(skip)

    def trunk_parameters(self) -> Iterable[nn.Parameter]:
        """Parameters of conv1_1 ... fc7 (the backbone)."""
        for name in self._trunk:
            yield from getattr(self, name).parameters()

    def head_parameters(self) -> Iterable[nn.Parameter]:
        """Parameters of the score layers and the deconvolutions."""
        for name in (*SCORE_LAYERS, *FINAL_UPSAMPLERS.values(), *SKIP_UPSAMPLERS):
            yield from getattr(self, name).parameters()

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the trunk; return pool3, pool4 and fc7 (after its ReLU and dropout)."""
        return run_trunk(self, self._trunk, x)

    def heads(
        self,
        feats: dict[str, torch.Tensor],
        size: tuple[int, int] | torch.Size,
        variants: Iterable[str] = VARIANTS,
        upsampling: Upsampling | None = None,
        streams: Iterable[str] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Fuse trunk features into the requested outputs, each cropped to ``size`` (H, W).

        The one implementation of the skip fusion (FCN-32s, 16s, 8s; the at-once variant's
        0.01 / 0.0001 scales): ``upsampling`` only chooses how the deconvolutions are computed
        (:mod:`core.models.upsampling`; default: the layers themselves).

        ``streams`` (default: all of :data:`SCORE_LAYERS`) names the score terms that enter
        the fusion; the others count as zero. The deconvolutions are linear and bias-free, so
        the outputs of one call per stream sum exactly to the full output
        (:mod:`core.insight.streams`).
        """
        wanted = set(variants)
        if not wanted <= set(VARIANTS):
            raise ValueError(f"unknown variants {sorted(wanted - set(VARIANTS))}")
        kept = set(SCORE_LAYERS if streams is None else streams)
        if not kept <= set(SCORE_LAYERS):
            raise ValueError(f"unknown streams {sorted(kept - set(SCORE_LAYERS))}")
        up = upsampling if upsampling is not None else _LAYERS
        score_fr = self.score_fr(feats["fc7"])
        if "score_fr" not in kept:
            score_fr = torch.zeros_like(score_fr)
        out: dict[str, torch.Tensor] = {}
        if "32s" in wanted:
            out["32s"] = up.final(self, "32s", score_fr, size)
        if wanted & {"16s", "8s"}:
            up2 = up.skip(self, "upscore2", score_fr)
            fuse4 = up2 + self._skip_scores("pool4", feats, up2, "score_pool4" in kept)
            if "16s" in wanted:
                out["16s"] = up.final(self, "16s", fuse4, size)
            if "8s" in wanted:
                up4 = up.skip(self, "upscore_pool4", fuse4)
                fuse3 = up4 + self._skip_scores("pool3", feats, up4, "score_pool3" in kept)
                out["8s"] = up.final(self, "8s", fuse3, size)
        return {v: out[v] for v in VARIANTS if v in out}

    def _skip_scores(self, pool: str, feats: dict[str, torch.Tensor],
                     like: torch.Tensor, kept: bool = True) -> torch.Tensor:
        """``score_<pool>`` of the pool features, aligned with ``like`` (cropped first: the
        score layer is a 1x1 convolution), scaled by the at-once factor when configured;
        zeros when the stream is not ``kept``."""
        if not kept:
            return torch.zeros_like(like)
        x = crop(feats[pool], self.offsets[f"score_{pool}"], like.shape[-2:])
        if self.config.scale_skips:
            x = x * AT_ONCE_SCALES[pool]
        return getattr(self, f"score_{pool}")(x)

    def forward(
        self, x: torch.Tensor, variants: Iterable[str] = VARIANTS
    ) -> dict[str, torch.Tensor]:
        """Score maps ``{variant: (N, C, H, W)}`` for a normalized ``(N, 3, H, W)`` input."""
        return self.heads(self.features(x), x.shape[-2:], variants)


def fcn_vgg16(
    *,
    num_classes: int = 21,
    width: float = 1.0,
    scale_skips: bool = False,
    learn_final_upsampling: bool = False,
    learn_skip_upsampling: bool = True,
    dropout: float = 0.5,
) -> FCN:
    """Build an FCN-VGG16 with all three heads (keyword-only, torchvision style)."""
    return FCN(
        FCNConfig(
            num_classes=num_classes,
            width=width,
            scale_skips=scale_skips,
            learn_final_upsampling=learn_final_upsampling,
            learn_skip_upsampling=learn_skip_upsampling,
            dropout=dropout,
        )
    )
