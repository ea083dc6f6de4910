"""ImageNet VGG16 (torchvision) into the FCN trunk: the fully connected layers become convolutions.

``classifier[0]`` (4096 x 25088) reshapes to fc6 (4096 x 512 x 7 x 7) and ``classifier[3]``
(4096 x 4096) to fc7 (4096 x 4096 x 1 x 1); ``classifier[6]`` (1000 x 4096) can become score_fr.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from core.errors import CheckpointError, DownloadError
from core.models.fcn import FCN, add_vgg16_trunk, run_trunk

VGG16_CONV_NAMES: dict[int, str] = {
    0: "conv1_1",
    2: "conv1_2",
    5: "conv2_1",
    7: "conv2_2",
    10: "conv3_1",
    12: "conv3_2",
    14: "conv3_3",
    17: "conv4_1",
    19: "conv4_2",
    21: "conv4_3",
    24: "conv5_1",
    26: "conv5_2",
    28: "conv5_3",
}


def vgg16_to_fcn_state(
    vgg_state: dict[str, torch.Tensor], *, with_fc8: bool = False
) -> dict[str, torch.Tensor]:
    """Rename (and reshape) a torchvision VGG16 state dict to FCN layer names."""
    out: dict[str, torch.Tensor] = {}
    try:
        for idx, name in VGG16_CONV_NAMES.items():
            out[f"{name}.weight"] = vgg_state[f"features.{idx}.weight"]
            out[f"{name}.bias"] = vgg_state[f"features.{idx}.bias"]
        fc6 = vgg_state["classifier.0.weight"]
        out["fc6.weight"] = fc6.reshape(fc6.shape[0], -1, 7, 7)
        out["fc6.bias"] = vgg_state["classifier.0.bias"]
        fc7 = vgg_state["classifier.3.weight"]
        out["fc7.weight"] = fc7.reshape(*fc7.shape, 1, 1)
        out["fc7.bias"] = vgg_state["classifier.3.bias"]
        if with_fc8:
            fc8 = vgg_state["classifier.6.weight"]
            out["score_fr.weight"] = fc8.reshape(*fc8.shape, 1, 1)
            out["score_fr.bias"] = vgg_state["classifier.6.bias"]
    except KeyError as exc:
        raise CheckpointError(f"not a torchvision VGG16 state dict: missing {exc}") from exc
    return out


def init_from_vgg16(model: FCN, vgg_state: dict[str, torch.Tensor]) -> None:
    """Copy VGG16 weights into ``model``'s trunk (conv1_1 ... fc7); shapes must match."""
    mapped = vgg16_to_fcn_state(vgg_state)
    own = model.state_dict()
    for key, value in mapped.items():
        if own[key].shape != value.shape:
            raise CheckpointError(
                f"VGG16 layer {key} has shape {tuple(value.shape)}, the model expects "
                f"{tuple(own[key].shape)} (ImageNet init needs width 1.0)"
            )
    model.load_state_dict(mapped, strict=False)


class ConvolutionalVGG16(nn.Module):
    """VGG16 with its classifier as convolutions (fc6 7x7, fc7 1x1, fc8 1x1 as ``score_fr``).

    On a 224x224 input it computes torchvision's ``vgg16(x)`` as a 1x1 map; on a larger input
    it gives the classifier's scores for every 224 window, slid with stride 32.
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._trunk = add_vgg16_trunk(self, 1.0, conv1_padding=1)
        self.score_fr = nn.Conv2d(4096, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class score map ``(N, num_classes, H/32 - 6, W/32 - 6)``."""
        return self.score_fr(run_trunk(self, self._trunk, x)["fc7"])


def convolutional_classifier(vgg_state: dict[str, torch.Tensor]) -> ConvolutionalVGG16:
    """Load a torchvision VGG16 state dict into a :class:`ConvolutionalVGG16`."""
    model = ConvolutionalVGG16()
    model.load_state_dict(vgg16_to_fcn_state(vgg_state, with_fc8=True))
    return model


def imagenet_vgg16_cache_path() -> Path:
    """Where torch.hub keeps the ImageNet VGG16 weights (``$TORCH_HOME/hub/checkpoints``)."""
    from torchvision.models import VGG16_Weights

    url = VGG16_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def load_imagenet_vgg16(model: FCN, *, progress: bool = True, url: str | None = None) -> None:
    """Initialize the trunk from torchvision's ``VGG16_Weights.IMAGENET1K_V1``.

    The file is downloaded once into torch.hub's cache. Offline, a :class:`DownloadError`
    says which file to fetch and where to put it.
    """
    from torchvision.models import VGG16_Weights

    weights = VGG16_Weights.IMAGENET1K_V1
    url = url or weights.url
    target = imagenet_vgg16_cache_path()
    try:
        state = torch.hub.load_state_dict_from_url(
            url,
            progress=progress,
            map_location="cpu",
            weights_only=True,
            file_name=target.name,
        )
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        raise DownloadError(
            f"Could not download the ImageNet VGG16 weights ({exc}).\n"
            f"Download {weights.url}\nand save it as {target}\n"
            "(or set TORCH_HOME to a folder holding hub/checkpoints/" + target.name + ")."
        ) from exc
    init_from_vgg16(model, state)
