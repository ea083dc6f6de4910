"""Correction with the image and the model: edge refinement and simulated clicks.

On held-out generated scenes (seeds never used for tuning; both rendering domains: the
default one, where the bundled model is good, and "shifted", where it is not), with the
bundled model's FCN-8s output:

1. Refinement (:func:`core.refine.crf.refine` on the 8s probabilities): mean IU and boundary
   F-score (tolerance 2 px) before and after, and the time per image.
2. Clicks (:class:`core.refine.clicks.ClickCorrector`): each click goes to the centre of the
   largest error region (connected wrong pixels of one true class), positive, with the true
   class, as interactive-segmentation papers simulate them; its preview is accepted into the
   mask and the next click goes to the then-largest error region. Mean IU after 1, 3 and 5
   clicks per image, beside two references on the same clicks: painting only the click's
   disk (radius 5) and fixing the whole clicked error region (an oracle). Time per click
   (the preview: adaptation and the re-prediction of the whole image; the trunk runs once
   per image, reported apart).
3. Timing on one image, repeated (``--repeats``): the refinement and a one-click preview,
   median and minimum (the minimum is what an idle machine gives; the CPU is shared).

    python benchmarks/refine_clicks.py [--images 12] [--size 512] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from app_common import machine

SEED = 2027  # tuning used seeds 99 (refinement) and 123 (clicks)
CLICKS = (1, 3, 5)


def _scores(acc) -> float:
    return round(acc.scores()["mean_iu"], 4)


def _oracle(current: np.ndarray, truth: np.ndarray, click) -> np.ndarray:
    """``current`` with the whole error region under ``click`` fixed."""
    import cv2

    err = ((current != truth) & (truth == click.label)).astype(np.uint8)
    _, comp = cv2.connectedComponents(err, connectivity=8)
    region = comp == comp[int(click.y), int(click.x)]
    out = current.copy()
    out[region] = truth[region]
    return out


def _disk(current: np.ndarray, click, radius: float = 5.0) -> np.ndarray:
    from core.annotation.labels import LabelImage
    from core.annotation.tools import brush_stroke

    img = LabelImage(current)
    img.paint(brush_stroke([(click.x, click.y)], radius, current.shape), click.label)
    return img.array.copy()


def run_domain(model, info, domain: str, images: int, size: int) -> dict:
    import torch

    from core.data.scenes import generate_scene, scene_seed
    from core.insight.features import image_tensor, trunk_features
    from core.metrics import ConfusionAccumulator
    from core.metrics.boundary import boundary_f_score
    from core.refine.clicks import ClickCorrector, simulate_click
    from core.refine.crf import refine

    n = info.num_classes
    ref = {"before": ConfusionAccumulator(n), "after": ConfusionAccumulator(n)}
    bf = {"before": [], "after": []}
    methods = ("model", "disk", "oracle")
    acc = {m: {k: ConfusionAccumulator(n) for k in (0, *CLICKS)} for m in methods}
    refine_s, click_s, trunk_s, changed = [], [], [], []
    for i in range(images):
        rgb, truth = generate_scene(scene_seed(SEED, i), (size, size), domain=domain)
        x = image_tensor(rgb, info.preprocessing)
        t0 = time.perf_counter()
        feats = trunk_features(model, x)
        trunk_s.append(time.perf_counter() - t0)
        with torch.no_grad():
            probs = feats.scores(model, ("8s",))["8s"][0].softmax(0)
        pred = probs.argmax(0).numpy().astype(np.uint8)
        result = refine(rgb, probabilities=probs)
        refine_s.append(result.seconds)
        changed.append(result.count / result.changed.size)
        for stage, labels in (("before", result.before), ("after", result.labels)):
            ref[stage].update(truth, labels)
            bf[stage].append(boundary_f_score(truth, labels, n, tolerance=2.0)["mean_bf"])
        current = {m: pred.copy() for m in methods}
        for m in methods:
            acc[m][0].update(truth, pred)
        corrector = ClickCorrector(model, feats, pred, image=rgb)
        for k in range(1, max(CLICKS) + 1):
            click = simulate_click(current["model"], truth)
            if click is not None:
                corrector.add(click)
                preview = corrector.preview()
                click_s.append(preview.seconds)
                current["model"] = corrector.accept(preview)
            for m, fix in (("disk", _disk), ("oracle", _oracle)):
                c = simulate_click(current[m], truth)
                if c is not None:
                    current[m] = fix(current[m], truth, c) if m == "oracle" else fix(
                        current[m], c)
            if k in CLICKS:
                for m in methods:
                    acc[m][k].update(truth, current[m])
        print(f"  {domain} {i + 1}/{images}", flush=True)
    return {
        "domain": domain, "images": images, "size": size,
        "refine": {"mean_iu_before": _scores(ref["before"]),
                   "mean_iu_after": _scores(ref["after"]),
                   "bf_before": round(float(np.mean(bf["before"])), 4),
                   "bf_after": round(float(np.mean(bf["after"])), 4),
                   "changed_fraction": round(float(np.mean(changed)), 4),
                   "seconds_median": round(float(np.median(refine_s)), 3),
                   "seconds_max": round(float(np.max(refine_s)), 3)},
        "clicks": {m: {str(k): _scores(a) for k, a in acc[m].items()} for m in methods},
        "click_seconds": {"median": round(float(np.median(click_s)), 3),
                          "p90": round(float(np.percentile(click_s, 90)), 3),
                          "max": round(float(np.max(click_s)), 3), "n": len(click_s)},
        "trunk_seconds_median": round(float(np.median(trunk_s)), 3),
    }


def timing(model, info, size: int, repeats: int) -> dict:
    """Refinement and one-click preview on one image, ``repeats`` times each."""
    import torch

    from core.data.scenes import generate_scene, scene_seed
    from core.insight.features import image_tensor, trunk_features
    from core.refine.clicks import ClickCorrector, simulate_click
    from core.refine.crf import refine

    rgb, truth = generate_scene(scene_seed(SEED, 0), (size, size))
    feats = trunk_features(model, image_tensor(rgb, info.preprocessing))
    with torch.no_grad():
        probs = feats.scores(model, ("8s",))["8s"][0].softmax(0)
    pred = probs.argmax(0).numpy().astype(np.uint8)
    click = simulate_click(pred, truth)
    crf, clicks = [], []
    for _ in range(repeats):
        crf.append(refine(rgb, probabilities=probs).seconds)
        corrector = ClickCorrector(model, feats, pred, image=rgb)
        corrector.add(click)
        clicks.append(corrector.preview().seconds)
    return {name: {"median": round(float(np.median(v)), 3), "min": round(float(np.min(v)), 3),
                   "n": len(v)} for name, v in (("refine", crf), ("click", clicks))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12, help="per domain")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--repeats", type=int, default=10, help="timing repeats")
    args = parser.parse_args()
    import torch

    from core.checkpoints.checkpoint import load_checkpoint
    from core.paths import default_model_path

    torch.set_num_threads(args.threads)
    model, info = load_checkpoint(default_model_path())
    model.eval()
    load = os.getloadavg()
    t0 = time.perf_counter()
    rows = [run_domain(model, info, d, args.images, args.size) for d in ("default", "shifted")]
    timed = timing(model, info, args.size, args.repeats)
    report = {"benchmark": "refine_clicks", "machine": machine(),
              "date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "model": f"bundled ({info.id})",
              "seed": SEED, "load_before": load, "load_after": os.getloadavg(),
              "wall_seconds": round(time.perf_counter() - t0, 1), "rows": rows,
              "timing_one_image": timed}
    out = Path(__file__).parent / "results" / f"refine-clicks-cpu-{args.size}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{report['machine']}, {report['date']}, torch {torch.__version__}, "
          f"{report['threads']} threads, load {load[0]:.1f} -> {report['load_after'][0]:.1f}\n")
    print("| domain | mean IU 8s -> refined | boundary F (2 px) 8s -> refined | "
          "refine s (median) |")
    print("|---|---|---|---|")
    for r in rows:
        f = r["refine"]
        print(f"| {r['domain']} | {f['mean_iu_before']:.4f} -> {f['mean_iu_after']:.4f} | "
              f"{f['bf_before']:.4f} -> {f['bf_after']:.4f} | {f['seconds_median']:.2f} |")
    print("\n| domain | method | 0 clicks | 1 | 3 | 5 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        for m, s in r["clicks"].items():
            print(f"| {r['domain']} | {m} | " + " | ".join(f"{s[k]:.4f}" for k in
                                                          ("0", "1", "3", "5")) + " |")
    print("\n| domain | s per click: median | p90 | max | trunk once per image |")
    print("|---|---|---|---|---|")
    for r in rows:
        c = r["click_seconds"]
        print(f"| {r['domain']} | {c['median']:.2f} | {c['p90']:.2f} | {c['max']:.2f} | "
              f"{r['trunk_seconds_median']:.2f} |")
    print(f"\none {args.size}px image, {args.repeats} times: refinement median "
          f"{timed['refine']['median']:.2f} s (min {timed['refine']['min']:.2f}), one-click "
          f"preview median {timed['click']['median']:.2f} s (min {timed['click']['min']:.2f})")
    print(f"\n{out}")


if __name__ == "__main__":
    main()
