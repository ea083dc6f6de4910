"""Your own classes from a few scribbles: accuracy on held-out images and the time to train.

Two set-ups, each: a new model for the user's classes from a trunk
(:func:`core.training.new_model.new_model`), rough labels on a few images (simulated
scribbles covering about 2 % of each class's pixels, every other pixel void), heads-only
training on cached trunk features (:func:`core.training.finetune.fine_tune`, fast mode,
the app's defaults), then mean IU per variant on held-out images.

1. Generated scenes with a class set that is not the bundled model's: background (its
   background, discs, boxes and triangles merged), wire, ring, dot. Scribbles on 3 scenes,
   20 held-out scenes. The bundled model merged the same way is the baseline.
2. Real photographs: mosaics of scikit-image's texture photos (brick, grass, gravel) with
   exact labels (256 px: the photos are 512 px wide and each half feeds one side); scribbles
   on 2 mosaics, held-out mosaics cut from the other half of each texture. From the
   bundled trunk, and with --imagenet from torchvision's ImageNet VGG16 where its weights
   are in torch.hub's cache (this machine has no internet: otherwise reported as missing).

"Train to shown" is the time from pressing Train (new model made, features cached, 200
steps, checkpoint written) to the prediction of the current image: what the app waits for
before drawing. Prints a markdown table and writes JSON to benchmarks/results/.

    python benchmarks/own_classes.py [--iterations 200] [--size 320] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from app_common import machine

SCENE_TO_USER = {0: 0, 1: 0, 2: 0, 3: 0, 4: 2, 5: 1, 6: 3}
"""Scene classes (background, disc, box, triangle, ring, wire, dot) -> the user's."""
USER_SCENE_CLASSES = ["background", "wire", "ring", "dot"]
TEXTURES = ("brick", "grass", "gravel")


def _merge(mask: np.ndarray) -> np.ndarray:
    lut = np.full(256, 255, np.uint8)
    for a, b in SCENE_TO_USER.items():
        lut[a] = b
    return lut[mask]


def _scores(segmenter, images, masks) -> dict[str, float]:
    from core.metrics import VariantScores

    acc = VariantScores(segmenter.class_names)
    for rgb, mask in zip(images, masks, strict=True):
        pred = segmenter.predict(rgb)
        acc.add(mask, {v: pred.outputs[v].labels for v in acc.variants})
    return {v: round(s["mean_iu"], 4) for v, s in acc.scores().items()}


def _train(init, classes, train_images, train_masks, current, iterations, seed, out):
    """New model + scribble training + the current image predicted: (segmenter, seconds)."""
    from core.data.mosaics import scribbles
    from core.inference import Segmenter
    from core.training.finetune import FineTuneConfig, fine_tune
    from core.training.new_model import new_model

    items = [(rgb, scribbles(m, 0.02, seed + i), None)
             for i, (rgb, m) in enumerate(zip(train_images, train_masks, strict=True))]
    labelled = float(np.mean([(s != 255).mean() for _, s, _ in items]))
    t0 = time.perf_counter()
    model, info = new_model(classes, init=init)
    result = fine_tune(model, info, items, FineTuneConfig(mode="fast", iterations=iterations,
                                                          seed=seed), out_path=out)
    segmenter = Segmenter(result.model, result.info, device="cpu")
    segmenter.predict(current)
    return segmenter, time.perf_counter() - t0, labelled, result


def scenes(default: Path, size: int, iterations: int, tmp: Path) -> dict:
    from core.data.scenes import generate_scene, scene_seed
    from core.inference import Segmenter

    train = [generate_scene(scene_seed(101, i), (size, size)) for i in range(3)]
    held = [generate_scene(scene_seed(202, i), (size, size)) for i in range(20)]
    held_images, held_masks = [r for r, _ in held], [_merge(m) for _, m in held]
    seg, seconds, labelled, _ = _train(
        default, USER_SCENE_CLASSES, [r for r, _ in train], [_merge(m) for _, m in train],
        train[0][0], iterations, 0, tmp / "scenes.safetensors")
    after = _scores(seg, held_images, held_masks)
    # the bundled model, its predictions merged into the user's classes
    base = Segmenter.from_checkpoint(default, device="cpu")
    from core.metrics import VariantScores

    acc = VariantScores(USER_SCENE_CLASSES)
    for rgb, mask in zip(held_images, held_masks, strict=True):
        pred = base.predict(rgb)
        acc.add(mask, {v: _merge(pred.outputs[v].labels) for v in acc.variants})
    baseline = {v: round(s["mean_iu"], 4) for v, s in acc.scores().items()}
    return {"setup": "scenes: background+disc+box+triangle, wire, ring, dot",
            "trunk": "bundled", "train_images": 3, "held_out": 20, "labelled": labelled,
            "train_to_shown_s": round(seconds, 2), "mean_iu": after,
            "baseline_bundled_merged": baseline}


def mosaics(default: Path, size: int, iterations: int, tmp: Path, trunks: list[str]) -> list:
    import skimage.data

    from core.data.mosaics import mosaic
    from core.training.new_model import IMAGENET_SOURCE

    tex = [getattr(skimage.data, name)() for name in TEXTURES]
    size = min(size, 256)  # 512-px photos, halves for training and held-out crops
    train = [mosaic(tex, (size, size), 300 + i, part=(0.0, 0.5)) for i in range(2)]
    held = [mosaic(tex, (size, size), 400 + i, part=(0.5, 1.0)) for i in range(10)]
    rows = []
    for trunk in trunks:
        init = default if trunk == "bundled" else IMAGENET_SOURCE
        try:
            seg, seconds, labelled, _ = _train(
                init, list(TEXTURES), [r for r, _ in train], [m for _, m in train],
                train[0][0], iterations, 0, tmp / f"mosaic-{trunk}.safetensors")
        except Exception as exc:  # no ImageNet weights offline: say so
            rows.append({"setup": "texture mosaics (brick, grass, gravel)", "trunk": trunk,
                         "error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"})
            continue
        rows.append({"setup": "texture mosaics (brick, grass, gravel)", "trunk": trunk,
                     "train_images": 2, "held_out": 10, "labelled": labelled,
                     "train_to_shown_s": round(seconds, 2),
                     "mean_iu": _scores(seg, [r for r, _ in held], [m for _, m in held])})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--imagenet", action="store_true",
                        help="also the ImageNet VGG16 trunk (needs its weights in the cache)")
    args = parser.parse_args()
    import torch

    from core.paths import default_model_path

    if args.threads:
        torch.set_num_threads(args.threads)
    default = default_model_path()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [scenes(default, args.size, args.iterations, Path(tmp))]
        trunks = ["bundled", "imagenet"] if args.imagenet else ["bundled"]
        rows += mosaics(default, args.size, args.iterations, Path(tmp), trunks)
    report = {"benchmark": "own_classes", "machine": machine(),
              "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "iterations": args.iterations,
              "size": args.size, "rows": rows}
    out = Path(__file__).parent / "results" / f"own-classes-cpu-{args.size}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['machine']}, {report['date']}, torch {torch.__version__}, "
          f"{report['threads']} threads; {args.iterations} steps; {args.size}px images\n")
    print("| set-up | trunk | labelled px | train to shown | mean IU 32s / 16s / 8s | baseline |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['setup']} | {r['trunk']} | | | not run: {r['error']} | |")
            continue
        iu = " / ".join(f"{r['mean_iu'][v]:.3f}" for v in ("32s", "16s", "8s"))
        base = r.get("baseline_bundled_merged")
        base_s = " / ".join(f"{base[v]:.3f}" for v in ("32s", "16s", "8s")) if base else ""
        print(f"| {r['setup']} | {r['trunk']} | {100 * r['labelled']:.1f} % | "
              f"{r['train_to_shown_s']:.1f} s | {iu} | {base_s} |")
    print(f"\n{out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    main()
