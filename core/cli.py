"""The command line: ``python -m core COMMAND --help`` (train, evaluate, predict, ...)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from core.errors import Cancelled, FCNStudioError


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train an FCN on a VOC-layout or images/masks dataset",
        description="Train FCN-32s/16s/8s (one model, all three outputs). By default the "
        "three outputs are supervised together (HED-style); --stage trains the paper's "
        "stages one at a time (32s, then 16s from it with --init, then 8s).",
    )
    p.add_argument("--data", required=True, type=Path, help="dataset root (VOC or folders)")
    p.add_argument("--out", required=True, type=Path, help="output folder for checkpoints")
    p.add_argument("--preset", default="compact", help="compact | paper | heavy | adam")
    p.add_argument("--width", type=float, default=None,
                   help="channel multiplier (1.0 = VGG16; default 0.25, or the --init model's)")
    p.add_argument("--iterations", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--optimizer", choices=["sgd", "adam"])
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--crop", type=int, dest="crop_size", help="training crop size in pixels")
    p.add_argument("--stage", choices=["32s", "16s", "8s"], help="staged training")
    p.add_argument("--weights", dest="variant_weights", metavar="W32,W16,W8",
                   help="loss weights of the 32s,16s,8s outputs (default 1,1,1)")
    p.add_argument("--reduction", choices=["mean", "sum"])
    p.add_argument("--schedule", choices=["fixed", "poly", "cosine"])
    p.add_argument("--at-once", action="store_true",
                   help="scale pool4 by 0.01 and pool3 by 0.0001 (FCN-8s at-once)")
    p.add_argument("--learn-final-upsampling", action="store_true", default=None)
    p.add_argument("--dropout", type=float, default=0.5, help="dropout after fc6 and fc7")
    p.add_argument("--init", type=Path, help="start from this checkpoint (its classes must match)")
    p.add_argument("--imagenet", action="store_true",
                   help="initialize the trunk from torchvision's ImageNet VGG16 (width 1.0)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    p.add_argument("--split", default="train", help="training split (VOC layout)")
    p.add_argument("--val-split", default="val", help="validation split ('' for none)")
    p.add_argument("--val-every", type=int)
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--workers", type=int)
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--name", default="", help="model name stored in the checkpoint")
    p.set_defaults(func=_run_train)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="the paper's four metrics for each of the 32s/16s/8s outputs",
        description="Evaluate a checkpoint on a labelled dataset; prints a table and writes "
        'JSON {"32s": {"pixel_acc", "mean_acc", "mean_iu", "fw_iu", "per_class_iu"}, ...}.',
    )
    p.add_argument("--model", type=Path, help="checkpoint (default: the bundled model)")
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--split", default="val", help="split to evaluate (VOC layout)")
    p.add_argument("--json", type=Path, help="write the scores here")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_run_evaluate)


def _add_make_scenes(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "make-scenes", help="write a generated VOC-layout dataset",
        description="Procedural scenes (deterministic by seed): textured backgrounds, blobs, "
        "boxes, thin wires and small dots, with occlusion and noise.",
    )
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, nargs=2, default=(256, 256), metavar=("H", "W"))
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="share of scenes in the val split (1 for a held-out test set)")
    p.add_argument("--domain", default="default", help="default | shifted")
    p.set_defaults(func=_run_make_scenes)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m core`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m core", description="FCN Studio: FCN-32s/16s/8s from the command line."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_evaluate(sub)
    from core import convert, labelme, predict

    predict.add_parser(sub)
    _add_make_scenes(sub)
    labelme.add_parser(sub)
    convert.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; bad input prints one clear line and exits 2 (cancel: 130)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except FCNStudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print("cancelled", file=sys.stderr)
        return 130


def _run_make_scenes(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.data.scenes import write_scene_dataset

    with tqdm(total=args.count, desc="scenes", unit="img", file=sys.stderr) as bar:
        try:
            out = write_scene_dataset(
                args.out, args.count, args.seed, size=tuple(args.size),
                val_fraction=args.val_fraction, domain=args.domain,
                progress=lambda done, total: bar.update(done - bar.n),
            )
        except ValueError as exc:  # bad arguments: say so in one line
            raise FCNStudioError(str(exc)) from exc
    print(out)
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.checkpoint import load_checkpoint
    from core.data.voc import open_dataset
    from core.devices import pick_device
    from core.paths import default_model_path
    from core.training.evaluate import evaluate

    device = pick_device(args.device)
    model, info = load_checkpoint(args.model or default_model_path(), device=device)
    pairs, names = open_dataset(args.data, split=args.split)
    _check_classes(names, info.class_names, args.data)
    with tqdm(total=len(pairs), desc="evaluate", unit="img", file=sys.stderr) as bar:
        scores = evaluate(model, pairs, info.preprocessing, info.class_names, device=device,
                          progress=lambda i, n: bar.update(i - bar.n))
    print(format_scores(scores))
    if args.json:
        from core.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(scores, indent=2))
    return 0


def format_scores(scores: dict[str, dict]) -> str:
    """A plain-text table of the four metrics per variant (values in %)."""
    rows = [f"{'variant':8} {'pixel acc':>9} {'mean acc':>9} {'mean IU':>9} {'f.w. IU':>9}"]
    for v, s in scores.items():
        rows.append(f"{v:8} {100 * s['pixel_acc']:9.2f} {100 * s['mean_acc']:9.2f} "
                    f"{100 * s['mean_iu']:9.2f} {100 * s['fw_iu']:9.2f}")
    return "\n".join(rows)


def _check_classes(data_names: Sequence[str], model_names: Sequence[str], where) -> None:
    from core.errors import ClassCountError

    if list(data_names) != list(model_names):
        raise ClassCountError(
            f"{where} has {len(data_names)} classes {list(data_names)[:8]}, the model has "
            f"{len(model_names)} {list(model_names)[:8]}"
        )


def _run_train(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from core.checkpoint import ModelInfo, load_checkpoint
    from core.data.transforms import train_transform
    from core.data.voc import SegmentationDataset, open_dataset
    from core.devices import pick_device
    from core.models.fcn import FCN, FCNConfig
    from core.models.preprocess import IMAGENET
    from core.training.config import check_run_options, preset
    from core.training.trainer import enter_stage, train

    check_run_options(width=args.width, dropout=args.dropout, threads=args.threads)
    if args.threads:
        torch.set_num_threads(args.threads)
    weights = None
    if args.variant_weights:
        try:
            w = [float(x) for x in args.variant_weights.split(",")]
            weights = dict(zip(("32s", "16s", "8s"), w, strict=True))
        except ValueError as exc:
            raise FCNStudioError(f"--weights takes three numbers, e.g. 1,1,1 ({exc})") from exc
    config = preset(
        args.preset, iterations=args.iterations, batch_size=args.batch_size, lr=args.lr,
        optimizer=args.optimizer, weight_decay=args.weight_decay, crop_size=args.crop_size,
        stage=args.stage, variant_weights=weights, reduction=args.reduction,
        schedule=args.schedule, learn_final_upsampling=args.learn_final_upsampling,
        val_every=args.val_every, checkpoint_every=args.checkpoint_every, seed=args.seed,
        workers=args.workers,
    )
    torch.manual_seed(config.seed)
    device = _distributed_device(args.device, pick_device)
    pairs, names = open_dataset(args.data, split=args.split)
    val_pairs = []
    if args.val_split:
        try:
            val_pairs, _ = open_dataset(args.data, split=args.val_split)
        except FCNStudioError:
            val_pairs = []
    if args.init:
        model, info = load_checkpoint(args.init)
        _check_classes(names, info.class_names, args.data)
        info.parent, info.metrics = info.id, []
        if args.stage:
            enter_stage(model, args.stage)
    else:
        cfg = FCNConfig(
            num_classes=len(names), width=0.25 if args.width is None else args.width,
            scale_skips=args.at_once,
            learn_final_upsampling=config.learn_final_upsampling,
            learn_skip_upsampling=config.learn_skip_upsampling, dropout=args.dropout,
        )
        model = FCN(cfg)
        info = ModelInfo(class_names=list(names), config=cfg, preprocessing=IMAGENET)
        if args.imagenet:
            from core.models.backbone import load_imagenet_vgg16

            load_imagenet_vgg16(model)
    info.name = args.name or info.name or args.out.name
    dataset = SegmentationDataset(
        pairs, transform=train_transform(config.crop_size, scale=config.scale, hflip=config.hflip),
        num_classes=len(names),
    )
    with tqdm(total=config.iterations, desc="train", unit="it", file=sys.stderr) as bar:
        def show(p) -> None:
            bar.update(p.iteration - bar.n)
            bar.set_postfix(loss=f"{p.loss:.4f}", lr=f"{p.lr:.2e}")

        result = train(model, info, dataset, config, args.out, device=device,
                       val_pairs=val_pairs, resume=args.resume, progress=show)
    if result.info and result.info.metrics:
        last = result.info.metrics[-1]
        print(format_scores({v: last[v] for v in ("32s", "16s", "8s") if v in last}))
    print(result.checkpoint)
    return 0


def _distributed_device(preference: str, pick_device):
    """Under torchrun, join the process group and use this rank's device."""
    import os

    import torch
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available() and preference != "cpu":
            torch.cuda.set_device(local)
            dist.init_process_group("nccl")
            return torch.device("cuda", local)
        dist.init_process_group("gloo")
        return torch.device("cpu")
    return pick_device(preference)
