"""Training-step benchmark: the eager fp32 step and the fast-path variants, in one run.

Each variant gets its own copy of one model and its own Adam optimizer and runs
:func:`core.training.fast.train_step` (the trainer's step) on the same batches of generated
scenes, timed round-robin: ``--warmup`` untimed steps, then the median and spread of
``--repeats`` timed ones, and the ratio to eager fp32 in the same run. The first step's loss
of each variant (same weights, same batch) is compared with eager's as a sanity check.

Examples::

    python benchmarks/train_step.py                     # CPU: compact model, 6 x 224 x 224
    python benchmarks/train_step.py --device cuda --width 1 --batch 8 --size 320 --repeats 30

Prints a markdown table and writes ``benchmarks/results/<name>.json``.
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.runtime_common import command_line, load, machine, stats, timer, write_json

# name: (amp, FastOptions overrides)
CPU_VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "eager fp32": ("off", {}),
    "channels_last": ("off", {"cl": "1"}),
    "border reuse": ("off", {"reuse": "1"}),
    "border reuse + channels_last": ("off", {"reuse": "1", "cl": "1"}),
    "bf16 autocast + channels_last": ("bf16", {"cl": "1"}),
    "bf16 + channels_last + border reuse": ("bf16", {"cl": "1", "reuse": "1"}),
    "channels_last + compile": ("off", {"cl": "1", "compile": "1"}),
    "bf16 + channels_last + compile": ("bf16", {"cl": "1", "compile": "1"}),
}
CUDA_VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "eager fp32": ("off", {}),
    "channels_last": ("off", {"cl": "1"}),
    "bf16 autocast": ("bf16", {}),
    "bf16 autocast + channels_last": ("bf16", {"cl": "1", "pin": "1"}),
    "bf16 + channels_last + border reuse": ("bf16", {"cl": "1", "pin": "1", "reuse": "1"}),
    "bf16 + channels_last + compile": ("bf16", {"cl": "1", "pin": "1", "compile": "1"}),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--width", type=float, default=None, help="default: 0.125 CPU, 1 CUDA")
    p.add_argument("--batch", type=int, default=None, help="default: 6 CPU, 8 CUDA")
    p.add_argument("--size", type=int, default=None, help="crop side; default: 224 CPU, 320 CUDA")
    p.add_argument("--classes", type=int, default=7)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--variants", default=None, help="comma-separated names (default: all)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--name", default=None)
    p.add_argument("--no-json", action="store_true")
    args = p.parse_args(argv)

    import torch

    from core.data.scenes import generate_scene
    from core.models import fcn_vgg16
    from core.models.preprocess import IMAGENET
    from core.training.config import TrainConfig
    from core.training.fast import FastOptions, compile_model, prepare, train_step
    from core.training.trainer import make_optimizer

    logging.basicConfig(level=logging.INFO, format="  %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    width = args.width if args.width is not None else (1.0 if cuda else 0.125)
    n = args.batch or (8 if cuda else 6)
    size = args.size or (320 if cuda else 224)
    table = CUDA_VARIANTS if cuda else CPU_VARIANTS
    names = [v.strip() for v in args.variants.split(",")] if args.variants else list(table)

    torch.manual_seed(0)
    base = fcn_vgg16(num_classes=args.classes, width=width, dropout=0.0)
    with torch.no_grad():  # score layers start at zero: give them a start, as after a step
        for layer in (base.score_fr, base.score_pool4, base.score_pool3):
            layer.weight.normal_(0.0, 0.01)
    config = TrainConfig()
    weights = config.loss_weights
    batches = []
    for b in range(3):
        pairs = [generate_scene(30_000 + b * n + k, (size, size)) for k in range(n)]
        images = torch.stack([torch.from_numpy(img).permute(2, 0, 1) for img, _ in pairs])
        masks = torch.stack([torch.from_numpy(m).long() for _, m in pairs])
        batches.append((images, masks))
    # Variants with pin_memory read pinned copies (the trainer's DataLoader pins them in its
    # workers, off the step's clock); the others read pageable memory.
    pinned = [(i.pin_memory(), m.pin_memory()) for i, m in batches] if cuda else batches

    runs = {}
    for name in names:
        amp, overrides = table[name]
        opts = FastOptions().with_options(overrides)
        model = copy.deepcopy(base).to(device).train()
        module = prepare(model, opts)
        optimizer = make_optimizer(model, config)
        net = compile_model(module, opts)
        runs[name] = (net, optimizer, amp, opts)

    measure = timer(str(device))
    load_before = load()
    first_loss: dict[str, float] = {}
    times: dict[str, list[float]] = {name: [] for name in runs}
    first_step: dict[str, float] = {}
    for step in range(1 + args.warmup + args.repeats):
        for name, (net, optimizer, amp, opts) in runs.items():
            images, masks = (pinned if opts.pin_memory else batches)[step % len(batches)]
            holder: dict[str, torch.Tensor] = {}

            def run(net=net, optimizer=optimizer, amp=amp, opts=opts, holder=holder,
                    images=images, masks=masks) -> None:
                holder["loss"], _ = train_step(
                    net, optimizer, images, masks, weights, IMAGENET, device=device, amp=amp,
                    reduction=config.reduction, options=opts)

            t = measure(run)
            if step == 0:
                first_loss[name] = float(holder["loss"])
                first_step[name] = t
            elif step > args.warmup:
                times[name].append(t)
        if step == 0:
            print("  first step done (compiles, autotuning)", flush=True)

    rows = []
    for name in runs:
        s = stats(times[name])
        rows.append({"variant": name, "amp": runs[name][2],
                     "options": vars(runs[name][3]), "first_step_s": first_step[name], **s,
                     "first_loss": first_loss[name]})
    base_ms = rows[0]["median_ms"]
    base = rows[0]["variant"]
    for row in rows:
        row["speedup_vs_eager"] = base_ms / row["median_ms"]
        pairs = [e / t for e, t in zip(times[base], times[row["variant"]], strict=True)]
        row["paired_speedup_median"] = sorted(pairs)[len(pairs) // 2]
        row["speedup_of_minimums"] = rows[0]["min_ms"] / row["min_ms"]
        row["first_loss_rel_diff"] = abs(row["first_loss"] - rows[0]["first_loss"]) / abs(
            rows[0]["first_loss"])

    info = machine()
    share = getattr(measure, "share", None)
    info["load_before"], info["load_after"] = load_before, load()
    if share is not None:
        info["cpu_seconds_per_wall_second"] = round(share.value, 3)
    desc = (f"FCN-8s VGG16 width {width:g}, {args.classes} classes, batch {n} x {size} x {size}, "
            "Adam, all three outputs supervised")
    payload = {"benchmark": "train_step", "command": command_line(), "machine": info,
               "device": str(device), "model": desc, "warmup": args.warmup,
               "repeats": args.repeats, "results": rows}
    if not args.no_json:
        path = write_json(args.name or f"train-step-{device.type}-w{width:g}-b{n}-{size}",
                          payload)
        print(f"wrote {path}")
    print()
    print(f"{info['cpu']} ({info['cores']} cores, {info['torch_threads']} torch threads)"
          + (f", {info['gpu']}" if cuda else "") + f"; torch {info['torch']}; "
          f"{info['date_utc']} UTC")
    if share is not None:
        print(f"CPU seconds per wall second while timed: {share.value:.2f} "
              f"(load before {load_before.get('loadavg_1_5_15')}, after "
              f"{info['load_after'].get('loadavg_1_5_15')})")
    print(desc)
    print()
    print("| variant | first step | median | p10-p90 (min-max) | vs eager fp32: medians / paired "
          "/ minimums | first loss Δ |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['variant']} | {row['first_step_s'] * 1e3:.0f} ms | "
              f"{row['median_ms']:.1f} ms | {row['p10_ms']:.1f}-{row['p90_ms']:.1f} "
              f"({row['min_ms']:.1f}-{row['max_ms']:.1f}) | {row['speedup_vs_eager']:.2f}x / "
              f"{row['paired_speedup_median']:.2f}x / {row['speedup_of_minimums']:.2f}x | "
              f"{100 * row['first_loss_rel_diff']:.2f}% |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
