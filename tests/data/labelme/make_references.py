"""Regenerate the labelme test files and the reference masks made by labelme itself.

Run with a Python that has labelme installed (not the project's venv), e.g.::

    python -m venv /tmp/labelme-venv && /tmp/labelme-venv/bin/pip install labelme==6.3.1
    /tmp/labelme-venv/bin/pip download labelme==6.3.1 --no-binary :all: --no-deps -d /tmp/sd
    tar xzf /tmp/sd/labelme-6.3.1.tar.gz -C /tmp/sd
    QT_QPA_PLATFORM=offscreen /tmp/labelme-venv/bin/python tests/data/labelme/make_references.py \
        /tmp/sd/labelme-6.3.1/examples/semantic_segmentation/labelme2voc.py

It writes ``input/*.json`` (+ one referenced PNG) and ``labels.txt`` here, runs labelme's own
``labelme2voc.py`` on them and copies its ``SegmentationClass/*.png`` to ``reference/``.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import PIL.Image

HERE = Path(__file__).resolve().parent
W, H = 64, 48
LABELS = ["__ignore__", "_background_", "disc", "box", "wire", "dot"]


def image(seed: int) -> PIL.Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    base = np.stack([xx * 4, yy * 5, (xx + yy) * 2], -1) + rng.integers(0, 40, (H, W, 3))
    return PIL.Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def png_b64(img: PIL.Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def shape(label: str, points: list, shape_type: str, **extra) -> dict:
    return {"label": label, "points": points, "group_id": None, "description": "",
            "shape_type": shape_type, "flags": {}, "mask": None, **extra}


def doc(shapes: list, image_path: str, image_data: str | None) -> dict:
    return {"version": "6.3.1", "flags": {}, "shapes": shapes, "imagePath": image_path,
            "imageData": image_data, "imageHeight": H, "imageWidth": W}


def main(script: str) -> None:
    inp = HERE / "input"
    shutil.rmtree(inp, ignore_errors=True)
    inp.mkdir()
    (HERE / "labels.txt").write_text("\n".join(LABELS) + "\n")

    # A: polygon (fractional and half-integer vertices), rectangle, circle, __ignore__ on top.
    a = [
        shape("disc", [[3.2, 4.7], [30.5, 2.5], [25.0, 30.25], [6.6, 22.1]], "polygon"),
        shape("box", [[40.4, 30.6], [58.5, 44.5]], "rectangle"),
        shape("dot", [[48.3, 12.6], [55.1, 16.0]], "circle"),
        shape("__ignore__", [[20.5, 20.5], [36.0, 22.0], [28.0, 35.5]], "polygon"),
    ]
    (inp / "shapes_a.json").write_text(json.dumps(doc(a, "shapes_a.png", png_b64(image(1)))))

    # B: line, linestrip, point, oriented rectangle; image referenced by imagePath.
    image(2).save(inp / "shapes_b.png")
    b = [
        shape("wire", [[2.0, 3.0], [60.5, 40.2]], "line"),
        shape("wire", [[5.0, 44.0], [20.3, 30.0], [33.0, 42.7], [50.0, 25.5]], "linestrip"),
        shape("dot", [[12.4, 10.6]], "point"),
        shape("dot", [[62.0, 2.0]], "point"),
        shape("box", [[35.0, 5.0], [50.0, 10.0], [46.0, 20.0], [31.0, 15.0]],
              "oriented_rectangle"),
    ]
    (inp / "shapes_b.json").write_text(json.dumps(doc(b, "shapes_b.png", None)))

    # C: mask shape, shapes partly outside the image, overlaps (later shapes win),
    # a rectangle given by its lower-right corner first.
    m = np.zeros((15, 21), np.uint8)
    yy, xx = np.mgrid[0:15, 0:21]
    m[((xx - 10) ** 2) / 100 + ((yy - 7) ** 2) / 49 <= 1] = 1
    m[5:9, 3:6] = 0
    c = [
        shape("box", [[30.0, 40.0], [10.0, 20.0]], "rectangle"),
        shape("disc", [[4.7, 3.2], [24.9, 17.8]], "mask",
              mask=png_b64(PIL.Image.fromarray(m))),
        shape("disc", [[-8.5, 30.0], [14.0, 42.0], [2.0, 60.0]], "polygon"),
        shape("dot", [[60.0, 44.0], [68.3, 44.0]], "circle"),
        shape("wire", [[35.0, 10.0], [70.0, -5.0]], "line"),
        shape("box", [[12.5, 12.5], [18.5, 12.5], [18.5, 18.5], [12.5, 18.5]], "polygon"),
    ]
    (inp / "shapes_c.json").write_text(json.dumps(doc(c, "shapes_c.png", png_b64(image(3)))))

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "voc"
        subprocess.run([sys.executable, script, str(inp), str(out), "--labels",
                        str(HERE / "labels.txt"), "--noobject", "--nonpy", "--noviz"],
                       check=True)
        ref = HERE / "reference"
        shutil.rmtree(ref, ignore_errors=True)
        shutil.copytree(out / "SegmentationClass", ref)
        shutil.copy(out / "class_names.txt", ref / "class_names.txt")
    import labelme

    (HERE / "reference" / "LABELME_VERSION").write_text(f"{labelme.__version__}\n")


if __name__ == "__main__":
    main(sys.argv[1])
