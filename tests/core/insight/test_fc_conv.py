"""fc layers as convolutions: the dense map is the classifier slid with stride 32."""

from __future__ import annotations

import pytest
import torch

from core.insight.fc_conv import STRIDE, WINDOW, compare_fc_conv
from core.models.backbone import ConvolutionalVGG16
from tests.core.insight.conftest import randomized_fcn

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("size", [(224, 224), (320, 288), (301, 250)])
def test_dense_map_equals_the_classifier_on_every_window(size: tuple[int, int]) -> None:
    model = randomized_fcn(seed=11).double()
    x = torch.randn(1, 3, *size, dtype=torch.float64)
    result = compare_fc_conv(model, x)
    rows = -(-size[0] // 32) - 6  # ceil-mode pooling: pool5 is ceil(H / 32)
    cols = -(-size[1] // 32) - 6
    assert result.dense.shape == result.slid.shape == (3, rows, cols)
    assert result.max_difference < 1e-10
    assert result.dense.abs().max() > 0.1  # not trivially zero


def test_crops_agree_exactly_only_for_a_single_window() -> None:
    model = randomized_fcn(seed=12).double()
    one = compare_fc_conv(model, torch.randn(1, 3, 224, 224, dtype=torch.float64), crops=True)
    assert one.crops.shape == (3, 1, 1) and one.crop_difference < 1e-10
    x = torch.randn(1, 3, 320, 352, dtype=torch.float64)
    many = compare_fc_conv(model, x, crops=True)
    assert many.crops.shape == (3, (320 - WINDOW) // STRIDE + 1, (352 - WINDOW) // STRIDE + 1)
    # each crop pads its own border with zeros where the dense pass sees the neighbours
    assert many.crop_difference > 1e-6
    # but the corner window's crop is the same input as the image's corner up to the crop's
    # right/bottom border: compare it with running the network on that crop directly
    corner = compare_fc_conv(model, x[..., :WINDOW, :WINDOW], crops=True)
    torch.testing.assert_close(many.crops[:, 0, 0], corner.dense[:, 0, 0])
    assert 0.0 <= many.crop_agreement <= 1.0
    with pytest.raises(ValueError, match="exceed"):
        compare_fc_conv(model, x, crops=True, max_crops=3)
    with pytest.raises(ValueError, match="smaller"):
        compare_fc_conv(model, x[..., :200, :])


def test_with_the_convolutional_vgg16_of_the_backbone_module() -> None:
    torch.manual_seed(0)
    net = ConvolutionalVGG16(num_classes=10).eval()
    x = torch.randn(1, 3, 256, 256)
    result = compare_fc_conv(net, x)
    with torch.no_grad():
        expected = net(x)[0]
    torch.testing.assert_close(result.dense, expected)
    assert result.dense.shape == (10, 2, 2)
    assert result.max_difference < 1e-4 * max(1.0, float(result.dense.abs().max()))


def test_window_boxes() -> None:
    from core.insight.fc_conv import FcConvComparison

    assert FcConvComparison.window(1, 2) == (64, 32, 64 + 224, 32 + 224)
