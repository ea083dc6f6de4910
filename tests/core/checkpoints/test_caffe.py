"""Caffe .caffemodel import: a test-only protobuf writer, both file formats, clear errors."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
import torch

from core.checkpoints.caffe import AT_ONCE_SCALES, load_caffemodel
from core.checkpoints.caffe_format import parse_net, read_caffemodel
from core.checkpoints.reference import DECONV_LAYERS, TRUNK_LAYERS, detect_variant, expected_keys
from core.data.palette import VOC_CLASSES
from core.errors import CheckpointError, ClassCountError
from core.models import CAFFE, FCN, FCNConfig

pytestmark = pytest.mark.usefixtures("one_thread")

WIDTH = 0.0625


# --------------------------------------------------------------------------- protobuf writer


def varint(v: int) -> bytes:
    """Protobuf varint (negative numbers as 64-bit two's complement, 10 bytes)."""
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(number: int, wire: int) -> bytes:
    """A field's tag."""
    return varint(number << 3 | wire)


def len_field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return key(number, 2) + varint(len(payload)) + payload


def int_field(number: int, value: int) -> bytes:
    """A varint field."""
    return key(number, 0) + varint(value)


def _unpacked(number: int, wire: int, raw: np.ndarray) -> bytes:
    tag = key(number, wire)
    assert len(tag) == 1
    rows = np.empty((raw.shape[0], 1 + raw.shape[1]), dtype=np.uint8)
    rows[:, 0] = tag[0]
    rows[:, 1:] = raw
    return rows.tobytes()


def blob_bytes(arr: np.ndarray, *, shape: str = "packed", floats: str = "packed",
               diff: bool = False) -> bytes:
    """A BlobProto. shape: packed | unpacked | legacy; floats: packed | unpacked | double."""
    arr = np.ascontiguousarray(arr)
    out = b""
    if shape == "legacy":
        dims = (1,) * (4 - arr.ndim) + arr.shape
        out += b"".join(int_field(i, d) for i, d in enumerate(dims, start=1))
    elif shape == "packed":
        out += len_field(7, len_field(1, b"".join(varint(d) for d in arr.shape)))
    else:
        out += len_field(7, b"".join(int_field(1, d) for d in arr.shape))
    flat = arr.astype("<f4").ravel()
    if floats == "packed":
        out += len_field(5, flat.tobytes())
    elif floats == "unpacked":
        out += _unpacked(5, 5, flat.view(np.uint8).reshape(-1, 4))
    else:
        d = arr.astype("<f8").ravel()
        out += _unpacked(8, 1, d.view(np.uint8).reshape(-1, 8))
    if diff:
        out += len_field(6, np.zeros(flat.size, "<f4").tobytes())
    return out


V1_TYPES = {"Convolution": 4, "Deconvolution": 39, "InnerProduct": 14, "ReLU": 18}


def layer_bytes(name: str, type_: str, blobs: Iterable[bytes], *, v1: bool = False,
                noise: bool = False) -> bytes:
    """A LayerParameter (or V1LayerParameter)."""
    blobs = list(blobs)
    if v1:
        out = len_field(2, b"bottom") + len_field(4, name.encode()) + int_field(5, V1_TYPES[type_])
        return out + b"".join(len_field(6, b) for b in blobs)
    out = len_field(1, name.encode()) + len_field(2, type_.encode())
    if noise:  # bottom, top, a nested convolution_param, a float field: all to be skipped
        out += len_field(3, b"data") + len_field(4, name.encode())
        out += len_field(106, int_field(1, 21) + int_field(4, 1))
        out += key(5, 5) + struct.pack("<f", 1.0)
    return out + b"".join(len_field(7, b) for b in blobs)


def net_bytes(layers: Iterable[bytes], *, v1: bool = False, name: str = "fcn",
              noise: bool = False) -> bytes:
    """A NetParameter."""
    out = len_field(1, name.encode())
    if noise:  # force_backward, a fixed64, a (deprecated) group, a non-weight layer
        out += int_field(5, 1) + key(50, 1) + struct.pack("<d", 2.0)
        out += key(99, 3) + int_field(1, 7) + key(99, 4)
        out += len_field(100, len_field(1, b"relu1_1") + len_field(2, b"ReLU"))
    number = 2 if v1 else 100
    return out + b"".join(len_field(number, layer) for layer in layers)


def write_caffemodel(path: Path, model: FCN, variant: str, *, v1: bool = False,
                     shape: str = "packed", floats: str = "packed", noise: bool = False,
                     fc_inner_product: bool = False, scales: bool = False,
                     drop: Iterable[str] = (), replace: dict | None = None) -> Path:
    """Write ``model``'s weights for a reference FCN-``variant`` net as a .caffemodel."""
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    state.update(replace or {})
    layers: dict[str, list[np.ndarray]] = {}
    for k in expected_keys(variant):
        layers.setdefault(k.rsplit(".", 1)[0], []).append(state[k])
    for extra in [k for k in (replace or {}) if k.split(".")[0] not in layers]:
        layers.setdefault(extra.rsplit(".", 1)[0], []).append(state[extra])
    out = []
    if scales:
        for layer, factor in AT_ONCE_SCALES.items():
            channels = 32 if layer == "scale_pool4" else 16  # 512 and 256 at width 1/16
            blob = blob_bytes(np.full(channels, factor, np.float32))
            out.append(layer_bytes(layer, "Scale", [blob]))
    for layer, blobs in layers.items():
        if layer in drop:
            continue
        type_ = "Deconvolution" if layer in DECONV_LAYERS else "Convolution"
        if fc_inner_product and layer in ("fc6", "fc7"):
            type_ = "InnerProduct"
            blobs = [blobs[0].reshape(blobs[0].shape[0], -1), blobs[1]]
        encoded = [blob_bytes(b, shape="legacy" if v1 else shape, floats=floats, diff=noise)
                   for b in blobs]
        out.append(layer_bytes(layer, type_, encoded, v1=v1, noise=noise))
    path.write_bytes(net_bytes(out, v1=v1, noise=noise))
    return path


# --------------------------------------------------------------------------- fixtures


def random_fcn(num_classes: int = 21, *, at_once: bool = False, seed: int = 0) -> FCN:
    """A tiny FCN whose every layer (upsamplers included) has distinctive weights."""
    torch.manual_seed(seed)
    model = FCN(FCNConfig(num_classes=num_classes, width=WIDTH, scale_skips=at_once))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("score_"):
                p.normal_(0, 0.5 if not at_once or name.startswith("score_fr") else 50.0)
            elif name.startswith("upscore"):
                p.add_(torch.rand_like(p) * 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def source() -> FCN:
    return random_fcn()


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(1, 3, 44, 37) * 50


def outputs(model: FCN, x: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return model.eval()(x)


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize(
    ("variant", "style"),
    [
        ("8s", {"shape": "packed", "floats": "packed", "noise": True}),
        ("16s", {"shape": "unpacked", "floats": "double"}),
        ("32s", {"v1": True, "floats": "unpacked", "fc_inner_product": True}),
        ("8s", {"v1": True, "floats": "packed"}),
    ],
    ids=["new-packed", "new-unpacked-double", "v1-unpacked-fc", "v1-packed"],
)
def test_known_weights_reproduce_the_source_outputs(
    tmp_path: Path, source: FCN, image: torch.Tensor, variant: str, style: dict
) -> None:
    path = write_caffemodel(tmp_path / f"fcn{variant}-heavy-pascal.caffemodel", source, variant,
                            **style)
    model, info = load_caffemodel(path)
    assert model.config == FCNConfig(num_classes=21, width=WIDTH)
    assert info.training == {"source": "caffe", "file": path.name, "variant": variant,
                             "at_once": False}
    got, want = outputs(model, image), outputs(source, image)
    torch.testing.assert_close(got[variant], want[variant], atol=1e-6, rtol=0)
    for key in expected_keys(variant):
        assert torch.equal(model.state_dict()[key], source.state_dict()[key]), key


def test_model_info_for_voc_weights(tmp_path: Path, source: FCN) -> None:
    path = write_caffemodel(tmp_path / "fcn32s-heavy-pascal.caffemodel", source, "32s")
    _, info = load_caffemodel(path)
    assert info.class_names == list(VOC_CLASSES) and info.preprocessing == CAFFE
    assert info.colors[15] == (192, 128, 128)  # person, VOC palette
    assert info.name == "fcn32s-heavy-pascal"
    assert "FCN-32s" in info.description


def test_other_class_counts_get_generic_names_and_a_note(tmp_path: Path) -> None:
    five = random_fcn(5)
    path = write_caffemodel(tmp_path / "five.caffemodel", five, "16s")
    model, info = load_caffemodel(path)
    assert info.class_names == [f"class_{i}" for i in range(5)]
    assert "--classes" in info.description and model.config.num_classes == 5
    _, named = load_caffemodel(path, class_names=list("abcde"))
    assert named.class_names == list("abcde")
    with pytest.raises(ClassCountError, match=r"3 class names given, but .* has 5 classes"):
        load_caffemodel(path, class_names=["a", "b", "c"])


def test_at_once_is_recognized_by_its_scale_layers_and_name(
    tmp_path: Path, source: FCN, image: torch.Tensor
) -> None:
    at_once = random_fcn(at_once=True, seed=3)
    path = write_caffemodel(tmp_path / "net.caffemodel", at_once, "8s", scales=True)
    model, info = load_caffemodel(path)
    assert model.config.scale_skips and info.training["at_once"]
    torch.testing.assert_close(outputs(model, image)["8s"], outputs(at_once, image)["8s"],
                               atol=1e-6, rtol=0)
    with pytest.raises(CheckpointError, match="at-once net"):
        load_caffemodel(path, at_once=False)
    named = write_caffemodel(tmp_path / "fcn8s-atonce-pascal.caffemodel", at_once, "8s")
    assert load_caffemodel(named)[0].config.scale_skips
    assert not load_caffemodel(named, at_once=False)[0].config.scale_skips
    plain = write_caffemodel(tmp_path / "fcn8s.caffemodel", source, "8s")
    assert not load_caffemodel(plain)[0].config.scale_skips
    assert load_caffemodel(plain, at_once=True)[0].config.scale_skips


def test_a_scale_layer_with_other_factors_is_refused(tmp_path: Path, source: FCN) -> None:
    path = write_caffemodel(tmp_path / "x.caffemodel", source, "8s", scales=True)
    data = path.read_bytes().replace(struct.pack("<f", 0.01), struct.pack("<f", 0.5))
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match=r"scale_pool4 scales by \[0.5\]"):
        load_caffemodel(path)


def test_read_blobs_gives_each_layer_its_blobs_with_shapes(tmp_path: Path, source: FCN) -> None:
    path = write_caffemodel(tmp_path / "a.caffemodel", source, "16s", v1=True)
    blobs = read_caffemodel(path)
    assert set(blobs) == set(TRUNK_LAYERS) | {"score_fr", "score_pool4", "upscore2", "upscore16"}
    assert blobs["conv1_1"][0].shape == (4, 3, 3, 3)
    assert blobs["conv1_1"][1].shape == (1, 1, 1, 4)  # legacy 4-D bias
    assert blobs["upscore16"][0].shape == (21, 21, 32, 32) and len(blobs["upscore16"]) == 1
    np.testing.assert_array_equal(blobs["fc6"][0], source.fc6.weight.detach().numpy())


def test_a_truncated_file_names_the_file_and_the_byte_offset(tmp_path: Path,
                                                              source: FCN) -> None:
    path = write_caffemodel(tmp_path / "cut.caffemodel", source, "32s")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.caffemodel .*truncated.* at byte \d+"):
        load_caffemodel(path)


@pytest.mark.parametrize(
    "data",
    [b"\xff" * 16, b"name: 'FCN'\nlayer {\n", b"\x0a\x05ab", b"\x08"],
    ids=["long-varint", "prototxt", "short-string", "short-varint"],
)
def test_garbage_is_a_clear_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "garbage.caffemodel"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match=r"garbage\.caffemodel .* at byte \d+"):
        load_caffemodel(path)


def test_empty_missing_and_layerless_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_caffemodel(tmp_path / "nope.caffemodel")
    (tmp_path / "empty.caffemodel").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_caffemodel(tmp_path / "empty.caffemodel")
    (tmp_path / "named.caffemodel").write_bytes(len_field(1, b"just a name"))
    with pytest.raises(CheckpointError, match="no Caffe layers"):
        load_caffemodel(tmp_path / "named.caffemodel")


def test_a_missing_layer_is_named(tmp_path: Path, source: FCN) -> None:
    path = write_caffemodel(tmp_path / "m.caffemodel", source, "8s", drop=["conv3_2"])
    missing = r"missing layers \['conv3_2.weight', 'conv3_2.bias'\]"
    with pytest.raises(CheckpointError, match=missing):
        load_caffemodel(path)


def test_an_unexpected_layer_is_named(tmp_path: Path, source: FCN) -> None:
    extra = {"extra_conv.weight": np.ones((2, 2, 1, 1), np.float32)}
    path = write_caffemodel(tmp_path / "u.caffemodel", source, "32s", replace=extra)
    with pytest.raises(CheckpointError, match=r"unexpected layers \['extra_conv.weight'\]"):
        load_caffemodel(path)


def test_a_shape_mismatch_names_the_layer_and_both_shapes(tmp_path: Path, source: FCN) -> None:
    bad = {"conv2_1.weight": np.zeros((8, 4, 5, 5), np.float32)}
    path = write_caffemodel(tmp_path / "s.caffemodel", source, "16s", replace=bad)
    with pytest.raises(CheckpointError,
                       match=r"conv2_1.weight has shape \(8, 4, 5, 5\).* expects \(8, 4, 3, 3\)"):
        load_caffemodel(path)


def test_disagreeing_class_counts_are_a_class_count_error(tmp_path: Path, source: FCN) -> None:
    bad = {"score_pool4.weight": np.zeros((5, 32, 1, 1), np.float32),
           "score_pool4.bias": np.zeros(5, np.float32)}
    path = write_caffemodel(tmp_path / "c.caffemodel", source, "16s", replace=bad)
    with pytest.raises(ClassCountError, match=r"score_pool4.* 5 classes, but score_fr has 21"):
        load_caffemodel(path)


def test_a_layer_of_the_wrong_type_is_refused(tmp_path: Path, source: FCN) -> None:
    path = write_caffemodel(tmp_path / "t.caffemodel", source, "32s")
    path.write_bytes(path.read_bytes().replace(b"Deconvolution", b"Convolution__"))
    with pytest.raises(CheckpointError, match="upscore is a Convolution__ layer"):
        load_caffemodel(path)


def test_blob_data_that_disagrees_with_its_shape_is_corrupt() -> None:
    blob = len_field(7, len_field(1, varint(2) + varint(3))) + len_field(5, b"\0" * 20)
    data = net_bytes([layer_bytes("conv1_1", "Convolution", [blob])])
    with pytest.raises(CheckpointError, match=r"blob 0 has shape \(2, 3\) but holds 5 values"):
        parse_net(data, "mem")


def test_the_wire_reader_skips_what_it_does_not_need() -> None:
    blob = (int_field(1, -1 & 0xFFFF) + len_field(7, int_field(1, 2)) + key(9, 1) + b"\0" * 8
            + len_field(5, np.array([1.5, -2], "<f4").tobytes()))
    data = net_bytes([layer_bytes("l", "Convolution", [blob], noise=True)], noise=True)
    net = parse_net(data, "mem")
    assert net.name == "fcn" and [layer.name for layer in net.layers] == ["relu1_1", "l"]
    np.testing.assert_array_equal(net.layers[1].blobs[0], [1.5, -2])
    assert varint(-1) == b"\xff" * 9 + b"\x01"


def test_variant_detection() -> None:
    assert detect_variant(expected_keys("32s")) == "32s"
    assert detect_variant(expected_keys("16s")) == "16s"
    assert detect_variant(expected_keys("8s")) == "8s"
