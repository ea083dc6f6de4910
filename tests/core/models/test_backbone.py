"""Fully connected layers are convolutions: the convolutionalized VGG16 is the classifier, slid."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models import vgg16

from core.errors import CheckpointError, DownloadError
from core.models import fcn_vgg16
from core.models.backbone import (
    convolutional_classifier,
    init_from_vgg16,
    load_imagenet_vgg16,
    vgg16_to_fcn_state,
)


@pytest.fixture(scope="module")
def vgg() -> torch.nn.Module:
    torch.manual_seed(0)
    return vgg16().eval()  # random weights: the same for both sides of each comparison


@pytest.fixture(scope="module")
def conv_classifier(vgg: torch.nn.Module) -> torch.nn.Module:
    return convolutional_classifier(vgg.state_dict()).eval()


def _scores(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x)


def test_224_input_gives_the_classifier_output(vgg, conv_classifier) -> None:
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = vgg(x)
        got = _scores(conv_classifier, x)
    assert got.shape == (2, 1000, 1, 1)
    torch.testing.assert_close(got[:, :, 0, 0], expected, rtol=1e-4, atol=1e-4)


def test_384_input_gives_the_6x6_map_of_the_classifier_slid_with_stride_32(
    vgg, conv_classifier
) -> None:
    x = torch.randn(1, 3, 384, 384)
    with torch.no_grad():
        score_map = _scores(conv_classifier, x)
        # The 384 image gives a 12x12 pool5 map; fc6 as a 7x7 conv reads each 7x7 window of it,
        # the window a 224 crop at (32 i, 32 j) maps to (up to that crop's own zero padding).
        pool5 = vgg.features(x)
        assert pool5.shape[-2:] == (12, 12) and score_map.shape == (1, 1000, 6, 6)
        for i in range(6):
            for j in range(6):
                window = pool5[:, :, i : i + 7, j : j + 7].flatten(1)
                expected = vgg.classifier(window)
                torch.testing.assert_close(score_map[:, :, i, j], expected, rtol=1e-4, atol=1e-4)


def test_init_from_vgg16_fills_fc6_and_fc7_by_reshaping(vgg) -> None:
    model = fcn_vgg16(num_classes=21)
    init_from_vgg16(model, vgg.state_dict())
    sd = vgg.state_dict()
    assert torch.equal(model.fc6.weight.flatten(1), sd["classifier.0.weight"])
    assert torch.equal(model.fc7.weight.flatten(1), sd["classifier.3.weight"])
    assert torch.equal(model.conv5_3.bias, sd["features.28.bias"])


def test_init_from_vgg16_rejects_a_compact_model(vgg) -> None:
    with pytest.raises(CheckpointError, match=r"width 1\.0"):
        init_from_vgg16(fcn_vgg16(num_classes=3, width=0.25), vgg.state_dict())


def test_not_a_vgg_state_dict_is_a_clear_error() -> None:
    with pytest.raises(CheckpointError, match="missing"):
        vgg16_to_fcn_state({"features.0.weight": torch.zeros(1)})


def test_offline_download_says_what_to_fetch_and_where(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model = fcn_vgg16(num_classes=3, width=0.0625)
    with pytest.raises(DownloadError) as info:
        # port 9 on loopback: nothing listens, the connection is refused at once
        load_imagenet_vgg16(model, progress=False, url="http://127.0.0.1:9/vgg16-397923af.pth")
    msg = str(info.value)
    assert "download.pytorch.org" in msg and "vgg16-397923af.pth" in msg
    assert str(tmp_path) in msg


@pytest.fixture(scope="module")
def hub_cache(vgg, tmp_path_factory) -> Path:
    """A TORCH_HOME whose hub cache holds the (random) VGG16 under torchvision's file name."""
    home = tmp_path_factory.mktemp("torch_home")
    cache = home / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(vgg.state_dict(), cache / "vgg16-397923af.pth")
    return home


def test_imagenet_weights_load_from_the_local_cache(vgg, hub_cache, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(hub_cache))
    model = fcn_vgg16(num_classes=21)
    load_imagenet_vgg16(model, progress=False, url="http://127.0.0.1:9/vgg16-397923af.pth")
    assert torch.equal(model.conv1_1.weight, vgg.state_dict()["features.0.weight"])


def test_a_new_model_for_own_classes_from_the_imagenet_trunk(vgg, hub_cache, monkeypatch) -> None:
    from core.training.new_model import IMAGENET_SOURCE, new_model

    monkeypatch.setenv("TORCH_HOME", str(hub_cache))
    model, info = new_model(["background", "crack", "rust"], init=IMAGENET_SOURCE)
    assert info.class_names == ["background", "crack", "rust"] and info.parent is None
    assert info.training["trunk"].startswith("torchvision VGG16")
    assert torch.equal(model.fc7.weight.flatten(1), vgg.state_dict()["classifier.3.weight"])
    assert not model.score_fr.weight.any()  # every class is new: zero score layers
