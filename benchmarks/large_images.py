"""Large images: the streamed prediction against the old tiled one, side by side in one run.

A 4000x3000 photo is composed from scikit-image's bundled ``astronaut()`` and ``coffee()``
(each upscaled to a quadrant, no downloads). Each case runs in its own subprocess, which
reports its timings and its peak resident memory (VmHWM from /proc/self/status):

* ``new``: this checkout's :class:`core.inference.Segmenter` (exact streaming in bands, the
  band height measured once per model and device and cached; the tuning time is reported
  apart). Times: a 512x512 crop (median of 3), the preview of the 12 MP photo (a downscaled
  copy), the first tile, the full FCN-8s result, and all three variants.
* ``old``: the Segmenter of ``--baseline`` (a commit before streaming; its ``core/`` is
  extracted with ``git archive`` into a temporary folder): tiles of 1024 px with 128 of
  overlap, blended scores, probabilities of every variant summarized at full resolution.

Models: the bundled model (``core.paths.default_model_path()``); ``compact21``: its trunk with
21 random score layers (the bundled architecture as a 21-class VOC model); ``full21``: the
full-width FCN-8s (VGG16, 4096-channel fc6/fc7) with random weights (timing and memory only:
random weights do not change the work). The old path on ``full21`` takes minutes on two
cores and runs only with ``--old-full-width``.

    python benchmarks/large_images.py    # bundled + compact21 old and new, full21 new
    python benchmarks/large_images.py --models bundled --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZE = (3000, 4000)  # H, W
BASELINE = "e529766"
"""The last commit before predictions streamed."""


# --------------------------------------------------------------------------- child side


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _model(name: str, device: str):
    import torch

    try:  # the current layout
        from core.checkpoints.checkpoint import ModelInfo, load_checkpoint
    except ImportError:  # the old path's tree (before core was regrouped)
        from core.checkpoint import ModelInfo, load_checkpoint  # type: ignore[no-redef]
    from core.data.palette import VOC_CLASSES
    from core.models import fcn_vgg16
    from core.paths import default_model_path

    if name == "full21":
        torch.manual_seed(0)
        model = fcn_vgg16(num_classes=21)
        for layer in (model.score_fr, model.score_pool4, model.score_pool3):
            torch.nn.init.normal_(layer.weight, std=0.01)
        return model, ModelInfo(list(VOC_CLASSES), model.config)
    model, info = load_checkpoint(default_model_path(), device=device)
    if name == "compact21":
        torch.manual_seed(0)
        big = fcn_vgg16(num_classes=21, width=model.config.width)
        state = {k: v for k, v in model.state_dict().items()
                 if not k.startswith(("score", "upscore"))}
        big.load_state_dict(state, strict=False)
        for layer in (big.score_fr, big.score_pool4, big.score_pool3):
            torch.nn.init.normal_(layer.weight, std=0.1)
        return big, ModelInfo(list(VOC_CLASSES), big.config, preprocessing=info.preprocessing)
    return model, info


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def child(spec: dict) -> dict:
    """Run one case (in its own process) and return its figures."""
    sys.path.insert(0, spec["root"])
    # An editable install's finder would serve modules the old tree lacks from this one.
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in repr(f)]
    import numpy as np
    import torch

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    from core.inference import Segmenter

    device, new = spec["device"], spec["path"] == "new"
    t0 = time.perf_counter()
    model, info = _model(spec["model"], device)
    kw = {} if new else {"tile_size": 1024, "tile_overlap": 128}
    seg = Segmenter(model, info, device=device, **kw)
    out: dict = {"load_s": time.perf_counter() - t0}
    image = np.load(spec["image"])
    crop = np.ascontiguousarray(image[:512, :512])
    h, w = image.shape[:2]

    def timed(fn) -> float:
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        return time.perf_counter() - start

    if new:  # measured once per model and device, then read from the cache
        start = time.perf_counter()
        out["band"] = seg.runner.band(h, w, seg.device)
        out["tuning_s"] = time.perf_counter() - start
    seg.predict(crop, variants="8s")  # warm-up (kernels, primitives)
    out["t512_8s"] = float(np.median([timed(lambda: seg.predict(crop, variants="8s"))
                                      for _ in range(3)]))
    if new:
        out["preview_s"] = timed(lambda: seg.preview(image, variants="8s"))
        first: list[float] = []
        _sync(device)
        start = time.perf_counter()

        def on_tile(_pred, _tile) -> None:
            if not first:
                first.append(time.perf_counter() - start)

        pred = seg.predict(image, variants="8s", on_tile=on_tile)
        _sync(device)
        out["t12_8s"] = time.perf_counter() - start
        out["first_tile_s"] = first[0]
        out["stored_mb_8s"] = pred.nbytes / 2**20
        del pred
    else:
        out["t12_8s"] = timed(lambda: seg.predict(image, variants="8s"))
    if spec["all_variants"]:
        out["t12_all"] = timed(lambda: seg.predict(image))
    out["per_pixel_vs_512"] = (out["t12_8s"] / (h * w)) / (out["t512_8s"] / 512**2)
    if device.startswith("cuda"):
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


# --------------------------------------------------------------------------- parent side


def photo(size: tuple[int, int] = SIZE):
    """A ``size`` RGB photo: astronaut and coffee in the four quadrants, upscaled (cubic)."""
    import cv2
    import numpy as np
    from skimage import data

    h, w = size
    half = (w // 2, h // 2)
    a = cv2.resize(data.astronaut(), half, interpolation=cv2.INTER_CUBIC)
    c = cv2.resize(data.coffee(), half, interpolation=cv2.INTER_CUBIC)
    top, bottom = np.hstack([a, c]), np.hstack([c, np.ascontiguousarray(a[:, ::-1])])
    return np.ascontiguousarray(np.vstack([top, bottom])[:h, :w])


def baseline_tree(rev: str, folder: Path) -> Path:
    """``core/`` and ``resources/`` of ``rev`` extracted into ``folder`` (read-only git)."""
    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(["git", "-C", str(root), "archive", rev, "core", "resources"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run_case(spec: dict) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    head = ("| model | path | 512² (8s) | 12 MP to the full 8s result | all 3 variants | "
            "preview | first tile | per pixel vs 512² | peak RSS | band |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        f = r["result"]
        if "error" in f:
            lines.append(f"| {r['model']} | {r['path']} | error: {f['error']} |" + " |" * 7)
            continue

        def sec(key: str, f: dict = f) -> str:
            return f"{f[key]:.2f} s" if key in f else "–"

        rss = f"{f['peak_rss_mb']:.0f} MB"
        if "peak_gpu_mb" in f:
            rss += f" (GPU {f['peak_gpu_mb']:.0f} MB)"
        lines.append(
            f"| {r['model']} | {r['path']} | {f['t512_8s'] * 1e3:.0f} ms | **{sec('t12_8s')}** | "
            f"{sec('t12_all')} | {sec('preview_s')} | {sec('first_tile_s')} | "
            f"{f['per_pixel_vs_512']:.2f}x | {rss} | {f.get('band', '1024 px tiles')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bundled,compact21,full21")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--baseline", default=BASELINE, help="commit of the old path")
    parser.add_argument("--baseline-root", type=Path, default=None,
                        help="an extracted tree of the old path (instead of git archive)")
    parser.add_argument("--no-old", action="store_true", help="only the new path")
    parser.add_argument("--old-full-width", action="store_true",
                        help="also the old path on full21 (minutes on a CPU)")
    parser.add_argument("--no-all-variants", action="store_true")
    parser.add_argument("--size", default=f"{SIZE[1]}x{SIZE[0]}", help="photo size WxH")
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    args = parser.parse_args()
    import numpy as np
    from runtime_common import RESULTS, machine

    root = str(Path(__file__).resolve().parents[1])
    width, height = (int(v) for v in args.size.lower().split("x"))
    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "photo.npy"
        np.save(image, photo((height, width)))
        old_root = None if args.no_old else str(
            args.baseline_root.resolve() if args.baseline_root
            else baseline_tree(args.baseline, Path(tmp)))
        for model in args.models.split(","):
            paths = ["old", "new"] if old_root else ["new"]
            if model == "full21" and not args.old_full_width:
                paths = ["new"]
            for path in paths:
                spec = {"path": path, "root": root if path == "new" else old_root,
                        "model": model, "image": str(image), "device": args.device,
                        "threads": args.threads, "all_variants": not args.no_all_variants}
                result = run_case(spec)
                print(f"{model} {path}: {json.dumps(result)}", file=sys.stderr)
                rows.append({"model": model, "path": path, "result": result})
    report = {"machine": machine(), "command": " ".join(sys.argv), "image": f"{width}x{height}",
              "baseline": args.baseline, "load_avg_before": load_before,
              "load_avg_after": os.getloadavg(), "cases": rows}
    out = args.out or RESULTS / f"large-images-{args.device.split(':')[0]}.json"
    out.write_text(json.dumps(report, indent=1))
    m = report["machine"]
    print(f"{m['cpu']}, {m['cores']} cores, torch {m['torch']}"
          f"{', ' + m['gpu'] if m['gpu'] else ''}; {m['date_utc']} UTC; load "
          f"{load_before[0]:.1f} before, {report['load_avg_after'][0]:.1f} after")
    print(table(rows))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        out = child(json.loads(sys.argv[2]))
        print(json.dumps(out))
    else:
        main()
