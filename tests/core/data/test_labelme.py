"""labelme import: pixel-identical to labelme's own labelme2voc, clear errors, the CLI."""

from __future__ import annotations

import argparse
import base64
import io
import json
import shutil
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from core.cli.labelme import add_parser
from core.data.imageio import read_mask
from core.data.labelme import (
    SHAPE_TYPES,
    LabelMap,
    LabelmeError,
    UnknownLabelError,
    import_labelme,
    read_labelme,
    read_labels,
)
from core.data.labelme_voc import labelme2voc
from core.data.voc import open_dataset

DATA = Path(__file__).resolve().parents[2] / "data" / "labelme"
INPUT = DATA / "input"
REFERENCE = DATA / "reference"
JSON_FILES = sorted(INPUT.glob("*.json"))


def reference(stem: str) -> np.ndarray:
    """Label values of the mask labelme's labelme2voc wrote (palette indices)."""
    img = PIL.Image.open(REFERENCE / f"{stem}.png")
    assert img.mode == "P"
    return np.array(img)


def test_the_references_cover_every_shape_type() -> None:
    types = set()
    for f in JSON_FILES:
        types |= {s["shape_type"] for s in json.loads(f.read_text())["shapes"]}
    assert types == set(SHAPE_TYPES)
    assert (REFERENCE / "LABELME_VERSION").read_text().strip()


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: p.stem)
def test_import_matches_labelme_pixel_for_pixel(path: Path) -> None:
    labels = read_labels(DATA / "labels.txt")
    rgb, mask = import_labelme(path, labels)
    ref = reference(path.stem)
    assert rgb.shape == (48, 64, 3) and mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, ref)
    assert len(np.unique(ref)) >= 4  # the shapes really drew something


def test_ignore_label_is_void_and_ids_follow_the_file_order() -> None:
    labels = read_labels(DATA / "labels.txt")
    assert labels.class_names == ("_background_", "disc", "box", "wire", "dot")
    assert labels.value("__ignore__") == 255 and labels.value("dot") == 4
    assert 255 in reference("shapes_a")
    assert read_labels("_background_,a, b").class_names == ("_background_", "a", "b")


def test_an_unknown_label_is_a_clear_error(tmp_path: Path) -> None:
    d = json.loads((INPUT / "shapes_a.json").read_text())
    d["shapes"][1]["label"] = "giraffe"
    (tmp_path / "in").mkdir()
    f = tmp_path / "in" / "bad.json"
    f.write_text(json.dumps(d))
    with pytest.raises(UnknownLabelError) as info:
        import_labelme(f, ["_background_", "disc", "box"])
    msg = str(info.value)
    assert "'giraffe'" in msg and str(f) in msg and "'disc'" in msg and "'__ignore__'" in msg
    assert info.value.label == "giraffe" and info.value.file == str(f)
    # what the app does when the user answers the prompt: an explicit alias, no renumbering
    labels = read_labels(DATA / "labels.txt").with_alias("giraffe", "box")
    _, mask = import_labelme(f, labels)
    np.testing.assert_array_equal(mask, reference("shapes_a"))  # shape 1 was a box
    with pytest.raises(UnknownLabelError):
        labels.with_alias("zebra", "okapi")
    with pytest.raises(UnknownLabelError, match="giraffe"):
        labelme2voc(tmp_path / "in", tmp_path / "out", read_labels(DATA / "labels.txt"))
    assert not (tmp_path / "out").exists()  # checked before anything is written


def test_unsupported_and_malformed_shapes_are_clear_errors(tmp_path: Path) -> None:
    labels = LabelMap.from_names(["_background_", "dot"])
    base = {"version": "6.3.1", "imageData": None, "imagePath": "../input/shapes_b.png",
            "imageHeight": 48, "imageWidth": 64, "flags": {}}
    cases = [
        ({"label": "dot", "points": [[1, 1], [5, 5]], "shape_type": "points"}, "'points'"),
        ({"label": "dot", "points": [[1, 1], [5, 5]], "shape_type": "polygon"}, "more than 2"),
        ({"label": "dot", "points": [[1, 1]], "shape_type": "circle"}, "needs 2 points"),
        ({"label": "dot", "points": "nope", "shape_type": "polygon"}, "list of"),
    ]
    work = tmp_path / "w"
    work.mkdir()
    for shape, match in cases:
        f = work / "x.json"
        f.write_text(json.dumps({**base, "imagePath": str(INPUT / "shapes_b.png"),
                                 "shapes": [shape]}))
        with pytest.raises(LabelmeError, match=match):
            import_labelme(f, labels)
    f.write_text(json.dumps({**base, "imagePath": str(INPUT / "shapes_b.png"),
                             "imageHeight": 50, "shapes": []}))
    with pytest.raises(LabelmeError, match="imageHeight is 50"):
        read_labelme(f)
    f.write_text("{not json")
    with pytest.raises(LabelmeError, match="Cannot read"):
        read_labelme(f)


def test_read_labels_refuses_ambiguous_files(tmp_path: Path) -> None:
    f = tmp_path / "labels.txt"
    f.write_text("__ignore__\n_background_\n\ncat\n")
    with pytest.raises(LabelmeError, match="blank line at line 3"):
        read_labels(f)
    f.write_text("__ignore__\n_background_\ncat\ncat\n")
    with pytest.raises(LabelmeError, match="repeats cat"):
        read_labels(f)
    f.write_text("__ignore__\n_background_\ncat\n\n\n")
    assert read_labels(f).class_names == ("_background_", "cat")
    with pytest.raises(LabelmeError, match="does not exist"):
        read_labels(tmp_path / "missing.txt")


def test_mask_shape_from_base64_png(tmp_path: Path) -> None:
    m = np.zeros((3, 4), np.uint8)
    m[1, 1:3] = 1
    buf = io.BytesIO()
    PIL.Image.fromarray(m).save(buf, format="PNG")
    shape = {"label": "dot", "points": [[2.9, 5.99], [5.0, 7.0]], "shape_type": "mask",
             "mask": base64.b64encode(buf.getvalue()).decode()}
    f = tmp_path / "m.json"
    f.write_text(json.dumps({"imageData": None, "imagePath": str(INPUT / "shapes_b.png"),
                             "shapes": [shape]}))
    _, mask = import_labelme(f, ["_background_", "dot"])
    expected = np.zeros((48, 64), np.uint8)
    expected[6, 3:5] = 1  # placed at the truncated first point (2, 5) + offset (1, 1)
    np.testing.assert_array_equal(mask, expected)


def test_labelme2voc_cli_end_to_end(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="python -m core")
    add_parser(parser.add_subparsers(dest="command", required=True))
    inp = tmp_path / "in"
    shutil.copytree(INPUT, inp)
    out = tmp_path / "voc"
    args = parser.parse_args(["labelme2voc", str(inp), str(out), "--labels",
                              str(DATA / "labels.txt")])
    assert args.func(args) == 0
    for f in JSON_FILES:
        np.testing.assert_array_equal(read_mask(out / "SegmentationClass" / f"{f.stem}.png"),
                                      reference(f.stem))
        with PIL.Image.open(out / "JPEGImages" / f"{f.stem}.jpg") as im:
            assert im.size == (64, 48)
        assert (out / "SegmentationClassVisualization" / f"{f.stem}.jpg").is_file()
    names = (out / "class_names.txt").read_text().split()
    assert names == (REFERENCE / "class_names.txt").read_text().split()
    pairs, class_names = open_dataset(out, split="train")
    assert len(pairs) == 3 and class_names == names
    again = parser.parse_args(["labelme2voc", str(inp), str(out), "--labels",
                               str(DATA / "labels.txt"), "--noviz"])
    with pytest.raises(LabelmeError, match="already exists"):
        again.func(again)
    noviz = parser.parse_args(["labelme2voc", str(inp), str(tmp_path / "v2"), "--labels",
                               "__ignore__,_background_,disc,box,wire,dot", "--noviz"])
    assert noviz.func(noviz) == 0
    assert not (tmp_path / "v2" / "SegmentationClassVisualization").exists()
