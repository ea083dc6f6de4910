"""Property-based fuzzing of the core's readers: every call succeeds with sane output or
raises an FCNStudioError naming the file; never another exception, never a hang.

Deterministic (derandomized) and bounded: a few hundred cases per property.
"""

from __future__ import annotations

import base64
import io
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.annotation.tools import brush_stroke, eyedropper
from core.checkpoints.caffe_format import parse_net
from core.checkpoints.checkpoint import ModelInfo
from core.data.imageio import check_mask, image_size, read_image, read_mask
from core.data.labelme import read_labelme
from core.data.palette import read_class_names
from core.errors import FCNStudioError

CASES = int(os.environ.get("FCN_FUZZ_CASES", "400"))
FUZZ = settings(derandomize=True, max_examples=CASES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def _png(w: int = 8, h: int = 6) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (10, 20, 30)).save(buf, format="PNG")
    return buf.getvalue()


def _png_declaring(w: int, h: int) -> bytes:
    """A PNG whose IHDR declares w x h (the data is not there)."""
    data = bytearray(_png())
    data[16:24] = struct.pack(">II", w, h)
    return bytes(data)


def _names_file(err: FCNStudioError, path: Path) -> None:
    assert str(path) in str(err), str(err)


@FUZZ
@given(data=st.one_of(
    st.binary(max_size=300),
    st.builds(lambda b, n: _png()[:n] + b, st.binary(max_size=40), st.integers(0, 80)),
    st.builds(_png_declaring, st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1)),
))
def test_image_and_mask_readers(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("img") / "x.png"
    path.write_bytes(data)
    for reader in (read_image, read_mask, image_size):
        try:
            out = reader(path)
        except FCNStudioError as exc:
            _names_file(exc, path)
            continue
        if reader is image_size:
            assert out[0] * out[1] <= 100_000_000
        else:
            assert np.asarray(out).dtype == np.uint8


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=4),
    max_leaves=20,
)


def _number():
    return st.one_of(st.integers(-10**400, 10**400), st.floats(), st.just(5))


_SHAPE = st.fixed_dictionaries({
    "label": st.one_of(st.just("a"), _JSON),
    "points": st.one_of(st.lists(st.lists(_number(), min_size=2, max_size=2), max_size=5),
                        _JSON),
    "shape_type": st.sampled_from(["polygon", "circle", "rectangle", "line", "point",
                                   "linestrip", "mask", "bogus", None]),
})


@FUZZ
@given(doc=st.one_of(
    _JSON,
    st.fixed_dictionaries({
        "shapes": st.one_of(st.lists(_SHAPE, max_size=4), _JSON),
        "imageData": st.one_of(st.just(base64.b64encode(_png()).decode()),
                               st.just(base64.b64encode(_png_declaring(20000, 20000))
                                       .decode()), _JSON),
    })), depth=st.integers(0, 3))
def test_labelme_reader(tmp_path_factory, doc, depth: int) -> None:
    path = tmp_path_factory.mktemp("lm") / "x.json"
    text = json.dumps(doc)
    if depth:
        text = "[" * (10 ** depth * 2) + text + "]" * (10 ** depth * 2)
    path.write_text(text)
    try:
        lf = read_labelme(path)
    except FCNStudioError as exc:
        _names_file(exc, path)
        return
    from core.data.labelme import LabelMap, shapes_to_label

    try:
        shapes_to_label(lf.shape, lf.shapes, LabelMap(("_background_", "a")), path)
    except FCNStudioError as exc:
        _names_file(exc, path)


@FUZZ
@given(data=st.one_of(st.binary(max_size=200), st.text(max_size=50).map(
    lambda t: t.encode("utf-16")), st.text(max_size=80).map(str.encode)))
def test_class_name_files(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("cn") / "class_names.txt"
    path.write_bytes(data)
    try:
        names = read_class_names(path)
    except FCNStudioError as exc:
        _names_file(exc, path)
        return
    assert names and all(isinstance(n, str) and n for n in names)


@FUZZ
@given(config=_JSON | st.fixed_dictionaries({
    "num_classes": _number() | st.integers(-3, 2000), "width": _number(),
    "dropout": _number(), "conv1_padding": _number()}),
    names=_JSON | st.lists(st.text(max_size=3), max_size=300),
    colors=_JSON | st.lists(st.lists(st.integers(-5, 300), max_size=4), max_size=5))
def test_checkpoint_metadata(config, names, colors) -> None:
    text = json.dumps({"format": "fcn-studio/1", "config": config, "class_names": names,
                       "colors": colors, "preprocessing": {}})
    try:
        info = ModelInfo.from_json(text, source="ck.safetensors")
    except FCNStudioError as exc:
        assert "ck.safetensors" in str(exc)
        return
    assert 1 <= info.num_classes <= 255 and len(info.colors) == info.num_classes


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


@FUZZ
@given(data=st.one_of(
    st.binary(max_size=300),
    st.integers(1, 30000).map(lambda n: b"\x0b" * n + b"\x0c" * n),  # nested groups
    st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=4).map(  # blob shapes
        lambda dims: b"\x12" + _varint(len(b := (b"\x32" + _varint(len(c := (
            b"\x3a" + _varint(len(s := b"".join(b"\x08" + _varint(d) for d in dims)))
            + s)) ) + c))) + b),
))
def test_caffe_parser(data: bytes) -> None:
    try:
        parse_net(data, "net.caffemodel")
    except FCNStudioError as exc:
        assert "net.caffemodel" in str(exc)


@FUZZ
@given(points=st.lists(st.tuples(st.floats(), st.floats()), max_size=4),
       radius=st.floats() | st.integers(-5, 10**6))
def test_brush_and_eyedropper(points, radius) -> None:
    mask = np.zeros((16, 16), np.uint8)
    for call in (lambda: brush_stroke(points, radius, (16, 16)),
                 lambda: eyedropper(mask, points[0] if points else (0, 0))):
        try:
            call()
        except FCNStudioError:
            pass


@pytest.mark.parametrize("arr", [np.array([[object(), 1]], dtype=object),
                                 np.array([[1.5, 2.0]]), np.array([["a", "b"]])])
def test_check_mask_refuses_non_integer_arrays(arr) -> None:
    with pytest.raises(FCNStudioError, match=r"m\.png"):
        check_mask(arr, (1, 2), 3, "m.png")
