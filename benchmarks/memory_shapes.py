"""Memory over many image sizes: RSS of one Segmenter running images of random sizes.

One ``core.inference.Segmenter`` over the bundled default model runs ``--images`` random
RGB images of random sizes in ``--min-size .. --max-size`` (seeded, the same sequence for
every configuration) through ``--path``: ``scores`` (default) is ``Segmenter.scores``, the
runtime backend the app's ``auto`` choice makes (``core.inference.runtime``: border reuse,
per-shape caches); ``predict`` is ``Segmenter.predict``, which streams the model's own layers
in bands (``core.inference.streaming``) and uses no runtime backend. Every ``--every``
images it records the resident memory (``VmRSS`` and its anonymous part ``RssAnon`` from
/proc/self/status), the runtime's per-shape caches (entries and bytes), heap trims, minor
page faults and time. Each configuration runs in a
fresh process, one after the other, so that they do not share a heap or compete for the
CPU:

* ``before``: the runtime as it was: caches bounded by entries only, oneDNN's primitive
  cache at its default (1024), no heap trimming (``FCN_STUDIO_HEAP=off``).
* ``after``: the defaults: byte budgets, oneDNN's cache at 512, heap trimming.
* ``budgets``: byte budgets and oneDNN at 512, no trimming (what the bounds alone do).
* ``before-trim``: ``before`` with trimming (what trimming alone does).
* ``before-arena2`` / ``before-mmap1m``: ``before`` with ``MALLOC_ARENA_MAX=2`` / a fixed
  1 MiB ``MALLOC_MMAP_THRESHOLD_`` (glibc settings, for comparison).
* ``after-cudnn256``: ``after`` with PyTorch's cuDNN execution-plan cache at 256 entries
  (``TORCH_CUDNN_V8_API_LRU_CACHE_LIMIT``; 10,000 by default), for CUDA runs.

At the end of each run the process trims its heap once more and records ``RssAnon``
again: what remains is live memory, the rest was free memory glibc kept.

Examples::

    python benchmarks/memory_shapes.py --images 3000 --config before --config after
    python benchmarks/memory_shapes.py --images 1000 --config budgets --config before-trim
    python benchmarks/memory_shapes.py --images 200 --backend onnxruntime
    python benchmarks/memory_shapes.py --images 300 --path predict
    python benchmarks/memory_shapes.py --images 300 --path predict --call-trimmer
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.runtime_common import RESULTS, load, machine  # noqa: E402

CONFIGS: dict[str, tuple[dict[str, str], bool]] = {
    # name: (environment, byte budgets on)
    "before": ({"FCN_STUDIO_HEAP": "off", "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "1024"}, False),
    "after": ({}, True),
    "budgets": ({"FCN_STUDIO_HEAP": "off", "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "512"}, True),
    "before-trim": ({"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "1024"}, False),
    "before-arena2": ({"FCN_STUDIO_HEAP": "off", "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "1024",
                       "MALLOC_ARENA_MAX": "2"}, False),
    "before-mmap1m": ({"FCN_STUDIO_HEAP": "off", "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "1024",
                       "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}, False),
    "after-cudnn256": ({"TORCH_CUDNN_V8_API_LRU_CACHE_LIMIT": "256"}, True),
}
"""The configurations a run can compare (see the module docstring)."""


def status_mb() -> dict[str, float]:
    """``VmRSS``, ``RssAnon`` and ``RssFile`` of this process in MB (10^6 bytes)."""
    out: dict[str, float] = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = round(int(value.split()[0]) * 1024 / 1e6, 1)
    return out


def cache_report(backend: object) -> dict[str, dict]:
    """Every per-shape cache of the runtime: the backend's and the shared index caches."""
    from core.inference.runtime.border_rings import shared_caches

    caches = {**backend.caches(), **shared_caches()}  # type: ignore[attr-defined]
    return {name: cache.stats() for name, cache in caches.items()}


def lift_budgets(backend: object) -> None:
    """Caches bounded by entries only, as before byte budgets (for ``before`` runs)."""
    from core.inference.runtime.border_rings import shared_caches

    for cache in [*backend.caches().values(), *shared_caches().values()]:  # type: ignore
        cache.max_bytes = None


def child(args: argparse.Namespace) -> None:
    """One configuration in this process: JSON lines on stdout."""
    import numpy as np
    import torch

    from core.inference import Segmenter
    from core.inference.runtime import heap

    start = status_mb()
    segmenter = Segmenter.from_checkpoint(args.model, device=args.device, backend=args.backend)
    cuda = segmenter.device.type == "cuda"
    if not CONFIGS[args.child][1]:
        lift_budgets(segmenter.backend)
    if args.trim_interval is not None:
        heap.TRIMMER.interval = args.trim_interval
    if args.trim_slack_mb is not None:
        heap.TRIMMER.slack = int(args.trim_slack_mb * 2**20)
    loaded = status_mb()
    run = segmenter.scores if args.path == "scores" else segmenter.predict
    rng = np.random.default_rng(args.seed)
    sizes = rng.integers(args.min_size, args.max_size + 1, size=(args.images, 2))
    if args.pool:  # sizes drawn from a pool: each comes back (graphs, cuDNN tuning)
        sizes = sizes[rng.integers(0, args.pool, size=args.images)]
    seconds: list[float] = []
    last_t, last_cpu = time.perf_counter(), time.process_time()
    last_flt = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    print(json.dumps({"start": start, "loaded": loaded, "threads": torch.get_num_threads(),
                      "backend": segmenter.backend.description,
                      "onednn_capacity": os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY"),
                      "heap": heap.enabled()}), flush=True)
    for i, (h, w) in enumerate(sizes, 1):
        image = rng.integers(0, 256, (int(h), int(w), 3), dtype=np.uint8)
        t = time.perf_counter()
        run(image)
        if args.call_trimmer:  # as a caller outside the runtime backends would
            heap.TRIMMER.after_call()
        seconds.append(time.perf_counter() - t)
        if i % args.every == 0 or i == args.images:
            now, cpu = time.perf_counter(), time.process_time()
            flt = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            caches = cache_report(segmenter.backend)
            print(json.dumps({
                "images": i, **status_mb(),
                "cache_bytes": sum(c["bytes"] for c in caches.values()),
                "cache_entries": sum(c["entries"] for c in caches.values()),
                "caches": caches, "trims": heap.TRIMMER.trims,
                "trim_s": round(heap.TRIMMER.seconds, 3),
                "wall_s": round(now - last_t, 2), "cpu_s": round(cpu - last_cpu, 2),
                "minor_faults": flt - last_flt, "loadavg_1": round(os.getloadavg()[0], 2),
                **({"cuda_allocated": torch.cuda.memory_allocated(),
                    "cuda_reserved": torch.cuda.memory_reserved()} if cuda else {}),
            }), flush=True)
            last_t, last_cpu, last_flt = now, cpu, flt
    before_trim = status_mb()
    heap.malloc_trim()
    print(json.dumps({"end": before_trim, "end_trimmed": status_mb(),
                      "median_ms": round(float(np.median(seconds)) * 1e3, 2),
                      "mean_ms": round(float(np.mean(seconds)) * 1e3, 2)}), flush=True)


def run_config(name: str, args: argparse.Namespace) -> dict:
    """Run one configuration in a fresh process; its records."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("FCN_STUDIO_HEAP", "ONEDNN_PRIMITIVE_CACHE_CAPACITY", "MALLOC_ARENA_MAX",
                        "MALLOC_MMAP_THRESHOLD_", "TORCH_CUDNN_V8_API_LRU_CACHE_LIMIT")}
    env.update(CONFIGS[name][0])
    cmd = [sys.executable, __file__, "--child", name, "--images", str(args.images),
           "--every", str(args.every), "--seed", str(args.seed), "--min-size",
           str(args.min_size), "--max-size", str(args.max_size), "--path", args.path,
           "--device", args.device, "--pool", str(args.pool)]
    if args.model:
        cmd += ["--model", args.model]
    if args.backend:
        cmd += ["--backend", args.backend]
    if args.call_trimmer:
        cmd += ["--call-trimmer"]
    for flag, value in (("--trim-interval", args.trim_interval),
                        ("--trim-slack-mb", args.trim_slack_mb)):
        if value is not None:
            cmd += [flag, str(value)]
    record: dict = {"config": name, "env": CONFIGS[name][0], "budgets": CONFIGS[name][1],
                    "series": []}
    started = time.perf_counter()
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            row = json.loads(line)
            if "images" in row:
                record["series"].append(row)
                print(f"  {name:>14} {row['images']:>5} images: VmRSS {row['VmRSS']:7.1f} MB, "
                      f"RssAnon {row['RssAnon']:7.1f} MB, caches {row['cache_bytes'] / 1e6:6.2f}"
                      f" MB in {row['cache_entries']} entries, trims {row['trims']}",
                      flush=True)
            else:
                record.update(row)
    if proc.returncode:
        raise SystemExit(f"{name} failed with exit status {proc.returncode}")
    record["run_s"] = round(time.perf_counter() - started, 1)
    return record


def at(record: dict, images: int, key: str) -> float | None:
    """``key`` of the record taken after ``images`` images (None if not taken)."""
    row = next((r for r in record["series"] if r["images"] == images), None)
    return None if row is None else row[key]


def table(records: list[dict], marks: list[int]) -> str:
    """The markdown table of a run."""
    head = ["config"] + [f"VmRSS @{m}" for m in marks] + [
        f"RssAnon @{m}" for m in marks] + [
        "RssAnon after a final trim", "caches at the end", "trims", "median ms/image"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        def mb(v: float | None) -> str:
            return "-" if v is None else f"{v:.0f}"
        last = r["series"][-1]
        cells = [r["config"]] + [mb(at(r, m, "VmRSS")) for m in marks] + [
            mb(at(r, m, "RssAnon")) for m in marks] + [
            mb(r["end_trimmed"]["RssAnon"]),
            f"{last['cache_bytes'] / 1e6:.1f} MB / {last['cache_entries']}",
            f"{last['trims']} ({last['trim_s']:.1f} s)", f"{r['median_ms']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-size", type=int, default=128)
    parser.add_argument("--max-size", type=int, default=256)
    parser.add_argument("--pool", type=int, default=0,
                        help="draw the sizes from this many (0: every image its own size)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default=None, help="checkpoint (default: the bundled model)")
    parser.add_argument("--backend", default=None, help="backend choice (default: auto)")
    parser.add_argument("--path", choices=("scores", "predict"), default="scores",
                        help="Segmenter.scores (the runtime backend) or Segmenter.predict")
    parser.add_argument("--call-trimmer", action="store_true",
                        help="call the runtime's heap trimmer after each image (predict "
                        "uses no runtime backend, which would call it)")
    parser.add_argument("--trim-interval", type=float, default=None,
                        help="seconds between heap trims at least (default: the runtime's)")
    parser.add_argument("--trim-slack-mb", type=float, default=None,
                        help="MiB of heap growth that trigger a trim (default: the runtime's)")
    parser.add_argument("--config", action="append", choices=sorted(CONFIGS),
                        help="configurations to run, in order (default: before, after)")
    parser.add_argument("--out", type=Path, default=None, help="JSON result file")
    parser.add_argument("--child", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    configs = args.config or ["before", "after"]
    result = {"benchmark": "memory_shapes", "machine": machine(), "load_before": load(),
              "command": " ".join([Path(sys.executable).name, *sys.argv]),
              "images": args.images, "sizes": [args.min_size, args.max_size],
              "seed": args.seed, "model": args.model or "bundled default",
              "backend": args.backend or "auto", "path": args.path, "device": args.device,
              "pool": args.pool,
              "call_trimmer": args.call_trimmer, "trim_interval": args.trim_interval,
              "trim_slack_mb": args.trim_slack_mb, "runs": []}
    for name in configs:
        print(f"{name}: {args.images} images", flush=True)
        result["runs"].append(run_config(name, args))
    result["load_after"] = load()
    marks = sorted({m for m in (50, 1000, 3000, args.images) if m <= args.images})
    text = table(result["runs"], marks)
    result["table"] = text
    out = args.out or RESULTS / f"memory-shapes-{args.device}-{args.path}-{args.images}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(text)
    print(f"written {out}")


if __name__ == "__main__":
    main()
