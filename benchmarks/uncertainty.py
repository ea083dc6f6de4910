"""Uncertainty that tells the user where to look: how much of the error it finds.

On held-out generated scenes (both rendering domains) with the bundled model's FCN-8s
output, for each uncertainty source of :mod:`core.insight.uncertainty` (and the mean of
the default combination):

* error recall at 10 %: the share of all wrong pixels that lie among each image's 10 % most
  uncertain pixels (random: 0.10; the best possible: min(1, 0.10 / error rate) per image);
* AUROC of the map as a detector of wrong pixels;
* "correct next": the share of the wrong pixels inside the 5 first ranked regions
  (:func:`core.insight.regions.rank_regions`) and the share of the image they cover;
* "next image to correct": the Spearman correlation, over all images, of the image score
  (:func:`core.insight.regions.image_score`) with the image's error rate;
* time per source at the benchmark size.

    python benchmarks/uncertainty.py [--images 16] [--size 384] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from app_common import machine

SEED = 2028
TOP = 0.10


def _top(u: np.ndarray, fraction: float) -> np.ndarray:
    """Exactly ``fraction`` of the pixels, the most uncertain first (ties by position)."""
    order = np.argsort(-u.ravel(), kind="stable")[: round(fraction * u.size)]
    top = np.zeros(u.size, bool)
    top[order] = True
    return top.reshape(u.shape)


def _auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    from scipy.stats import rankdata

    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16, help="per domain")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch
    from scipy.stats import spearmanr

    from core.checkpoints.checkpoint import load_checkpoint
    from core.data.scenes import generate_scene, scene_seed
    from core.insight.features import image_tensor, trunk_features
    from core.insight.regions import image_score, rank_regions
    from core.insight.uncertainty import SOURCES, estimate_uncertainty
    from core.paths import default_model_path

    torch.set_num_threads(args.threads)
    model, info = load_checkpoint(default_model_path())
    model.eval()
    names = [*SOURCES, "combined"]
    load = os.getloadavg()
    rows, per_image = [], []
    seconds: dict[str, list[float]] = {}
    for domain in ("default", "shifted"):
        found = {s: 0 for s in names}
        oracle, errors, pixels = 0.0, 0, 0
        scores = {s: [] for s in names}
        wrong: list[np.ndarray] = []
        regions = {"errors": 0, "area": 0}
        for i in range(args.images):
            rgb, truth = generate_scene(scene_seed(SEED, i), (args.size, args.size),
                                        domain=domain)
            x = image_tensor(rgb, info.preprocessing)
            t0 = time.perf_counter()
            feats, flipped = trunk_features(model, x), trunk_features(model, x.flip(-1))
            seconds.setdefault("trunk (x2, with the mirrored image)", []).append(
                time.perf_counter() - t0)
            u = estimate_uncertainty(model, features=feats, flipped=flipped)
            for k, v in u.seconds.items():
                seconds.setdefault(k, []).append(v)
            maps = {**u.maps, "combined": u.combined()}
            valid = truth != 255
            err = (u.labels != truth) & valid
            errors += int(err.sum())
            pixels += int(valid.sum())
            oracle += min(float(err.sum()), TOP * err.size)
            for s in names:
                found[s] += int((err & _top(maps[s], TOP)).sum())
                scores[s].append(maps[s][valid])
            wrong.append(err[valid])
            ranked = rank_regions(maps["combined"], u.labels)[:5]
            for r in ranked:
                full = r.region.to_full(err.shape)
                regions["errors"] += int((full & err).sum())
                regions["area"] += int(full.sum())
            per_image.append({"domain": domain, "error_rate": float(err.sum() / valid.sum()),
                              **{s: image_score(maps[s]) for s in names}})
            print(f"  {domain} {i + 1}/{args.images}", flush=True)
        w = np.concatenate(wrong)
        rows.append({
            "domain": domain, "images": args.images, "error_rate": round(errors / pixels, 4),
            "recall_at_10": {s: round(found[s] / max(1, errors), 4) for s in names},
            "recall_at_10_best_possible": round(oracle / max(1, errors), 4),
            "auroc": {s: round(_auroc(np.concatenate(scores[s]), w), 4) for s in names},
            "top5_regions_error_share": round(regions["errors"] / max(1, errors), 4),
            "top5_regions_area_share": round(regions["area"] / (args.images * args.size ** 2),
                                             4),
        })
    rates = [r["error_rate"] for r in per_image]
    spearman = {s: round(float(spearmanr([r[s] for r in per_image], rates).statistic), 4)
                for s in names}
    report = {"benchmark": "uncertainty", "machine": machine(),
              "date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "model": f"bundled ({info.id})",
              "size": args.size, "seed": SEED, "load_before": load,
              "load_after": os.getloadavg(), "rows": rows,
              "image_ranking_spearman": spearman,
              "seconds_median": {k: round(float(np.median(v)), 3) for k, v in seconds.items()},
              "per_image": per_image}
    out = Path(__file__).parent / "results" / f"uncertainty-cpu-{args.size}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{report['machine']}, {report['date']}, torch {torch.__version__}, "
          f"{report['threads']} threads, load {load[0]:.1f} -> {report['load_after'][0]:.1f}\n")
    print("| source | " + " | ".join(f"recall@10% {r['domain']} | AUROC {r['domain']}"
                                      for r in rows) + " | image ranking (Spearman) |")
    print("|---|" + "---|---|" * len(rows) + "---|")
    for s in names:
        print(f"| {s} | " + " | ".join(f"{r['recall_at_10'][s]:.3f} | {r['auroc'][s]:.3f}"
                                       for r in rows) + f" | {spearman[s]:.3f} |")
    print("| best possible | " + " | ".join(f"{r['recall_at_10_best_possible']:.3f} | "
                                           for r in rows) + " |")
    for r in rows:
        print(f"\n{r['domain']}: error rate {r['error_rate']:.4f}; the 5 first 'correct next' "
              f"regions hold {100 * r['top5_regions_error_share']:.1f} % of the errors on "
              f"{100 * r['top5_regions_area_share']:.1f} % of the image")
    print("\nseconds (median): " + ", ".join(f"{k} {v:.3f}" for k, v in
                                             report["seconds_median"].items()))
    print(f"\n{out}")


if __name__ == "__main__":
    main()
