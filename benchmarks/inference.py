"""Inference benchmark: the eager fp32 baseline and the optimized backends, in one run.

For each backend: the first call (export, border record, compile, graph capture), then the
median and spread of ``--repeats`` timed calls after ``--warmup`` untimed ones, the ratio
to eager in the same run, and the argmax agreement with eager fp32 per variant (fraction
of pixels given the same class), on ``--images`` different generated scenes. Backends are
timed round-robin, one call each in turn, so that drifts of the machine hit them alike.

The default model is the reference FCN-8s (VGG16, width 1, pad 100, 21 classes) with a
random trunk and score layers calibrated so that the classes vary across the image (random
weights alone give a near-constant argmax); ``--model CKPT`` uses a checkpoint instead and
``--inputs samples`` the bundled sample images at their own sizes.

Examples::

    python benchmarks/inference.py                       # CPU (or CUDA if present), 500x500
    python benchmarks/inference.py --device cuda --repeats 50 --warmup 10
    python benchmarks/inference.py --model resources/models/default.safetensors \\
        --inputs samples -b eager -b auto

Prints a markdown table and writes ``benchmarks/results/<name>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.runtime_common import command_line, load, machine, stats, timer, write_json

CPU_BACKENDS = (
    "eager",
    "torch:cl=1,reuse=0",
    "torch:cl=1",
    "onnxruntime:reuse=0",
    "auto",
)
CUDA_BACKENDS = (
    "eager",
    "torch:dtype=float32,cl=1,reuse=0,bucket=0,graphs=0",
    "torch:reuse=0,graphs=0",
    "torch:reuse=0",
    "torch:graphs=0",
    "torch:dtype=bf16",
    "torch:bucket=64",
    "torch:compile=1",
    "emulate:fp16",
    "auto",
)


def calibrate_scores(model, image: np.ndarray, preprocessing, targets=(1.0, 3.0, 6.0),
                     seed: int = 0) -> None:
    """Random score layers calibrated on ``image``: spatially varying, confident outputs.

    Each score layer gets random weights, a bias centering its output over the image and a
    scale giving logits of standard deviation ``targets`` (score_fr, score_pool4,
    score_pool3), as in tests/core/test_inference.py.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    model.eval()
    x = preprocessing(torch.from_numpy(image).permute(2, 0, 1)[None])
    with torch.no_grad():
        feats = model.features(x)
        for (layer, key), target in zip(
            (("score_fr", "fc7"), ("score_pool4", "pool4"), ("score_pool3", "pool3")),
            targets, strict=True,
        ):
            conv = getattr(model, layer)
            f = feats[key].double()
            w = torch.randn(conv.weight.shape[:2], generator=gen, dtype=torch.float64)
            mean = f.mean((0, 2, 3))
            std = torch.einsum("oc,nchw->nohw", w, f - mean[:, None, None]).std()
            conv.weight.copy_((w * target / std)[:, :, None, None].float())
            conv.bias.copy_((-(w @ mean) * target / std).float())


class Emulated:
    """A GPU's reduced-precision trunk emulated on the CPU: inputs, weights and every layer's
    output rounded to ``dtype`` (fp16 or bf16), products summed in fp32 (as tensor cores
    do), the heads in fp32, as in the torch backend. For agreement estimates only: CPU
    fp16 convolutions have no fast kernels here. Backend spec: ``emulate:fp16``."""

    name = "emulate"

    def __init__(self, model, dtype: str) -> None:
        import torch

        from core.models.upsampling import GroupedUpsampling

        self.model = model
        self.dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
        self.upsampling = GroupedUpsampling(model)
        self.notes: list[str] = []
        self.description = f"fp32 trunk rounded to {dtype} after every layer (emulation)"

    def __call__(self, x, variants=("32s", "16s", "8s")):
        import torch
        import torch.nn.functional as F

        from core.models.fcn import VARIANTS

        def r(t):
            return t.to(self.dtype).float()

        from core.inference.runtime.cuda import cuda_flags

        m = self.model
        h, w = x.shape[-2:]
        feats = {}
        x = r(x)
        with torch.inference_mode(), cuda_flags(None, False):  # no TF32 rounding on a GPU
            for name in m._trunk:
                layer = getattr(m, name)
                if isinstance(layer, torch.nn.Conv2d):
                    x = r(F.conv2d(x, r(layer.weight), layer.bias, 1, layer.padding))
                else:
                    x = layer(x)
                if name in ("pool3", "pool4"):
                    feats[name] = x
            feats["fc7"] = x
            out = m.heads(feats, (h, w), VARIANTS, self.upsampling)
        return {v: o for v, o in out.items() if v in variants}


def _wait_for_background(backend) -> float | None:
    """Seconds until a background build (``Upgrade``) inside ``backend`` is done, if any."""
    import time

    seen = set()
    todo = [backend]
    while todo:
        b = todo.pop()
        if id(b) in seen or b is None:
            continue
        seen.add(id(b))
        if callable(getattr(b, "wait", None)):
            t0 = time.perf_counter()
            b.wait()
            return time.perf_counter() - t0
        todo += [getattr(b, a, None) for a in ("primary", "fast", "first")]
    return None


def build(args: argparse.Namespace):
    """``(model, preprocessing, description)`` on the CPU."""
    import torch

    from core.data.scenes import generate_scene
    from core.models import fcn_vgg16
    from core.models.preprocess import IMAGENET

    if args.model:
        from core.checkpoints.checkpoint import load_checkpoint

        model, info = load_checkpoint(args.model)
        name = info.name or Path(args.model).stem
        return model.eval(), info.preprocessing, (
            f"checkpoint {args.model} ({name}, width {info.config.width}, "
            f"{info.num_classes} classes)")
    torch.manual_seed(args.seed)
    model = fcn_vgg16(num_classes=args.classes, width=args.width).eval()
    calib, _ = generate_scene(10_000 + args.seed, (args.size, args.size))
    calibrate_scores(model, calib, IMAGENET, seed=args.seed)
    return model, IMAGENET, (
        f"FCN-VGG16 width {args.width}, {args.classes} classes, pad 100, random trunk with "
        "calibrated score layers")


def inputs(args: argparse.Namespace, preprocessing) -> tuple[list, list[str]]:
    """Normalized ``(N, 3, H, W)`` batches and their descriptions."""
    import torch

    from core.data.imageio import read_image
    from core.data.scenes import generate_scene
    from core.paths import SAMPLES

    if args.inputs == "samples":
        paths = sorted((SAMPLES / "images").glob("*.*"))[: args.images]
        imgs = [read_image(p) for p in paths]
        names = [p.name for p in paths]
    else:
        imgs = [generate_scene(20_000 + k, (args.size, args.size))[0] for k in range(args.images)]
        names = [f"scene {20_000 + k}" for k in range(args.images)]
    batches = []
    for img in imgs:
        x = preprocessing(torch.from_numpy(img).permute(2, 0, 1)[None])
        batches.append(x.expand(args.batch, -1, -1, -1).contiguous())
    return batches, names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("-b", "--backend", action="append", dest="backends",
                   help="backend choice, repeatable (default: a set per device; see "
                        "core/inference/runtime/options.py)")
    p.add_argument("--size", type=int, default=500)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--classes", type=int, default=21)
    p.add_argument("--model", default=None, help="a checkpoint instead of the calibrated model")
    p.add_argument("--inputs", choices=("scenes", "samples"), default="scenes")
    p.add_argument("--images", type=int, default=3, help="distinct inputs (rotated; agreement)")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: as is)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default=None, help="results file name (benchmarks/results/NAME.json)")
    p.add_argument("--no-json", action="store_true")
    args = p.parse_args(argv)

    import torch

    from core.inference.runtime import EagerBackend, agreement, select_backend
    from core.inference.runtime.cuda import cuda_flags

    logging.basicConfig(level=logging.INFO, format="  %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    specs = args.backends or list(CUDA_BACKENDS if device.startswith("cuda") else CPU_BACKENDS)
    if "eager" not in specs:
        specs.insert(0, "eager")
    base, preprocessing, model_desc = build(args)
    batches, names = inputs(args, preprocessing)
    batches = [b.to(device) for b in batches]
    measure = timer(device)
    load_before = load()

    print(f"model: {model_desc}; device {device}; inputs: {len(batches)} x "
          f"{tuple(batches[0].shape)} ({args.inputs}); {args.warmup} warm-up + "
          f"{args.repeats} timed calls each", flush=True)
    backends = {}
    first: dict[str, float] = {}
    ready_after: dict[str, float] = {}
    for spec in specs:
        model = copy.deepcopy(base).to(device).eval()  # in-place layout changes stay private
        if spec == "eager":
            backend = EagerBackend(model, device)
        elif spec.startswith("emulate:"):
            backend = Emulated(model, spec.split(":", 1)[1])
        else:
            backend = select_backend(model, device, spec, preprocessing=preprocessing)
        with torch.inference_mode():
            first[spec] = measure(lambda b=backend: b(batches[0]))
        backends[spec] = backend
        ready = _wait_for_background(backend)
        if ready is not None:
            ready_after[spec] = ready
        print(f"  {spec}: {backend.description}; first call {first[spec]:.3f} s"
              + (f"; background build done {ready:.1f} s later" if ready is not None else ""),
              flush=True)

    times: dict[str, list[float]] = {s: [] for s in specs}
    with torch.inference_mode():
        for r in range(args.warmup + args.repeats):
            x = batches[r % len(batches)]
            for spec, backend in backends.items():
                t = measure(lambda b=backend, x=x: b(x))
                if r >= args.warmup:
                    times[spec].append(t)

        # The agreement reference is true fp32: on a GPU the timed eager row runs with
        # PyTorch's defaults, where cuDNN rounds fp32 convolutions to TF32.
        with cuda_flags(None, False) if device.startswith("cuda") else contextlib.nullcontext():
            reference = [backends["eager"](x) for x in batches]
        rows = []
        for spec, backend in backends.items():
            agree: dict[str, list[float]] = {}
            err = 0.0
            for x, ref in zip(batches, reference, strict=True):
                out = backend(x)
                for v, a in agreement(out, ref).items():
                    agree.setdefault(v, []).append(a)
                for v in ref:
                    d = (out[v].float() - ref[v].float()).abs().max() / ref[v].abs().max()
                    err = max(err, float(d))
            s = stats(times[spec])
            rows.append({
                "backend": spec, "description": backend.description,
                "notes": list(backend.notes), "first_call_s": first[spec],
                "background_build_s": ready_after.get(spec), **s,
                "per_image_ms": s["median_ms"] / args.batch,
                "agreement_min": {v: min(a) for v, a in agree.items()},
                "agreement_mean": {v: float(np.mean(a)) for v, a in agree.items()},
                "max_rel_error": err,
            })
    eager_ms = rows[0]["median_ms"]
    for row in rows:
        row["speedup_vs_eager"] = eager_ms / row["median_ms"]
        pairs = [e / t for e, t in zip(times["eager"], times[row["backend"]], strict=True)]
        row["paired_speedup_median"] = float(np.median(pairs))
        row["speedup_of_minimums"] = rows[0]["min_ms"] / row["min_ms"]

    info = machine()
    share = getattr(measure, "share", None)
    info["load_before"], info["load_after"] = load_before, load()
    if share is not None:
        info["cpu_seconds_per_wall_second"] = round(share.value, 3)
    payload = {
        "benchmark": "inference", "command": command_line(), "machine": info,
        "device": device, "model": model_desc, "batch": args.batch,
        "input_shape": list(batches[0].shape), "inputs": names, "warmup": args.warmup,
        "repeats": args.repeats, "results": rows,
        "agreement_reference": "eager fp32" + (" with cuDNN TF32 off (the timed eager row uses "
                                               "PyTorch's defaults: TF32 convolutions)"
                                               if device.startswith("cuda") else ""),
    }
    if not args.no_json:
        name = args.name or (f"inference-{device.split(':')[0]}-{args.inputs}-"
                             f"{args.size}-w{args.width:g}-b{args.batch}")
        path = write_json(name, payload)
        print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    print()
    print(f"{info['cpu']} ({info['cores']} cores, {info['torch_threads']} torch threads)"
          + (f", {info['gpu']}" if device.startswith("cuda") else "")
          + f"; torch {info['torch']}, onnxruntime {info['onnxruntime']}; {info['date_utc']} UTC")
    if share is not None:
        print(f"CPU seconds per wall second while timed: {share.value:.2f} "
              f"(load before {load_before.get('loadavg_1_5_15')}, after "
              f"{info['load_after'].get('loadavg_1_5_15')})")
    for proc in info["load_after"].get("top_processes", []):
        print(f"  busy at the end: {proc}")
    print(f"{model_desc}; input {tuple(batches[0].shape)}")
    print()
    print("| backend | what runs | first call | median | p10-p90 (min-max) | vs eager: medians "
          "/ paired / minimums | agreement 32s / 16s / 8s (min) |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        a = row["agreement_min"]
        print(f"| `{row['backend']}` | {row['description']} | {row['first_call_s'] * 1e3:.0f} ms "
              f"| {row['median_ms']:.1f} ms | {row['p10_ms']:.1f}-{row['p90_ms']:.1f} "
              f"({row['min_ms']:.1f}-{row['max_ms']:.1f}) | {row['speedup_vs_eager']:.2f}x / "
              f"{row['paired_speedup_median']:.2f}x / {row['speedup_of_minimums']:.2f}x | "
              + " / ".join(f"{100 * a[v]:.2f}%" for v in ("32s", "16s", "8s") if v in a) + " |")
    notes = {n for row in rows for n in row["notes"]}
    for n in sorted(notes):
        print(f"- note: {n}")
    del backends
    gc.collect()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
