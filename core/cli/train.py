"""``train``: train an FCN on a VOC-layout or images/masks dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli.evaluate import check_classes, format_scores
from core.errors import FCNStudioError
from core.variants import VARIANTS


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``train``."""
    p = sub.add_parser(
        "train", help="train an FCN on a VOC-layout or images/masks dataset",
        description="Train FCN-32s/16s/8s (one model, all three outputs). By default the "
        "three outputs are supervised together (HED-style); --stage trains the paper's "
        "stages one at a time (32s, then 16s from it with --init, then 8s).",
    )
    p.add_argument("--data", required=True, type=Path,
                   help="dataset root (VOC or folders; with --heads-only also an FCN Studio "
                   "project folder)")
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
    p.add_argument("--stage", choices=VARIANTS, help="staged training")
    p.add_argument("--weights", dest="variant_weights", metavar="W32,W16,W8",
                   help="loss weights of the 32s,16s,8s outputs (default 1,1,1)")
    p.add_argument("--reduction", choices=["mean", "sum"])
    p.add_argument("--schedule", choices=["fixed", "poly", "cosine"])
    p.add_argument("--at-once", action="store_true",
                   help="scale pool4 by 0.01 and pool3 by 0.0001 (FCN-8s at-once)")
    p.add_argument("--learn-final-upsampling", action="store_true", default=None)
    p.add_argument("--dropout", type=float, default=0.5, help="dropout after fc6 and fc7")
    p.add_argument("--init", type=Path,
                   help="start from this checkpoint; for other classes than its own, a new "
                   "model with its trunk (score weights kept for classes of the same name)")
    p.add_argument("--classes", type=Path,
                   help="class names, one a line (labels.txt / class_names.txt; default: the "
                   "dataset's class_names.txt)")
    p.add_argument("--imagenet", action="store_true",
                   help="initialize the trunk from torchvision's ImageNet VGG16 (width 1.0)")
    p.add_argument("--heads-only", action="store_true",
                   help="what the app's project training does: a new model for --classes "
                   "from the trunk of --init (or --imagenet), saved as new-model.safetensors, "
                   "then only its heads trained on cached trunk features (fast mode, the "
                   "app's defaults and seed) on the (partial: void is ignored) masks, saved "
                   "as model.safetensors; --iterations, --lr, --batch-size and --seed "
                   "override the defaults")
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


def _run_heads_only(args: argparse.Namespace) -> int:
    """``train --heads-only``: :func:`core.training.own_classes.train_own_classes`."""
    import torch

    from core.data.palette import read_class_names
    from core.training.finetune import FineTuneConfig
    from core.training.new_model import IMAGENET_SOURCE, NEW_MODEL_KIND
    from core.training.own_classes import train_own_classes

    if args.init is None and not args.imagenet:
        raise FCNStudioError("--heads-only needs the trunk: --init CHECKPOINT or --imagenet")
    if args.init is not None and args.imagenet:
        raise FCNStudioError("--heads-only takes one trunk: --init or --imagenet, not both")
    if args.stage or args.resume:
        raise FCNStudioError("--heads-only trains a new model's heads: no --stage or --resume")
    if args.threads:
        torch.set_num_threads(args.threads)
    items, held, names = _heads_only_data(args)
    if args.classes:
        names = read_class_names(args.classes, error=FCNStudioError)  # __ignore__ dropped
    config = FineTuneConfig.for_mode("fast", iterations=args.iterations, lr=args.lr,
                                     batch_size=args.batch_size, seed=args.seed)
    init = IMAGENET_SOURCE if args.imagenet else args.init
    from core.inference.devices import pick_device

    device = pick_device(args.device)
    info, result = train_own_classes(names, init, items, args.out, config=config,
                                     name=args.name, device=device, held_out=held)
    if info.training.get("kind") == NEW_MODEL_KIND and info.training.get("trunk_id"):
        print(_transfer_line(info), file=sys.stderr)
    print(f"trained on {len(items)} image(s), {result.iterations} steps, "
          f"{result.seconds:.1f} s", file=sys.stderr)
    for title, scores in (("before", result.held_before), ("after", result.held_after)):
        if scores:
            print(f"held out ({result.held_images}), {title}:")
            print(format_scores(scores))
    print(result.checkpoint)
    return 0


def _heads_only_data(args: argparse.Namespace) -> tuple[list, list, list[str]]:
    """Training items, held-out pairs and class names of ``--data``: an FCN Studio project
    (its annotated images, its held-out marks) or a dataset (the ``--split`` pairs; the
    ``--val-split`` pairs held out when they are other images)."""
    from core.annotation.project import PROJECT_FILE, Project
    from core.data.voc import open_dataset
    from core.training.own_classes import dataset_items

    if (args.data / PROJECT_FILE).is_file():
        project = Project.open(args.data)
        ids = project.training_ids()
        if not ids:
            raise FCNStudioError(f"The project {args.data} has no annotated image to train on")
        held = [(project.image_path(i), project.mask_path(i))
                for i in project.held_out_ids() if project.has_mask(i)]
        return project.training_items(ids), held, project.class_names
    pairs, names = open_dataset(args.data, split=args.split)
    held = []
    if args.val_split:
        try:
            val, _ = open_dataset(args.data, split=args.val_split)
        except FCNStudioError:
            val = []
        held = [p for p in val if p not in set(pairs)]
    return dataset_items(pairs), held, names


def _run_train(args: argparse.Namespace) -> int:
    if args.heads_only:
        return _run_heads_only(args)
    import torch
    from tqdm import tqdm

    from core.checkpoints.checkpoint import ModelInfo, load_checkpoint
    from core.data.palette import read_class_names
    from core.data.transforms import train_transform
    from core.data.voc import SegmentationDataset, open_dataset
    from core.inference.devices import pick_device
    from core.models.fcn import FCN, FCNConfig
    from core.models.preprocess import IMAGENET
    from core.training.config import check_run_options, preset
    from core.training.new_model import IMAGENET_SOURCE, new_model, transfer
    from core.training.trainer import enter_stage, train

    check_run_options(width=args.width, dropout=args.dropout, threads=args.threads)
    if args.threads:
        torch.set_num_threads(args.threads)
    weights = None
    if args.variant_weights:
        try:
            w = [float(x) for x in args.variant_weights.split(",")]
            weights = dict(zip(VARIANTS, w, strict=True))
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
    if args.classes:
        names = read_class_names(args.classes, error=FCNStudioError)  # __ignore__ dropped
    if args.init:
        model, info = load_checkpoint(args.init)
        if list(info.class_names) != list(names):
            if args.stage:
                check_classes(names, info.class_names, args.data)  # staged: the same classes
            model, info = transfer(model, info, names)
            print(_transfer_line(info), file=sys.stderr)
        else:
            info.parent, info.metrics = info.id, []
        if args.stage:
            enter_stage(model, args.stage)
    elif args.imagenet:
        if args.width not in (None, 1.0):
            raise FCNStudioError("--imagenet needs --width 1 (the ImageNet VGG16 is full width)")
        model, info = new_model(names, init=IMAGENET_SOURCE)
    else:
        cfg = FCNConfig(
            num_classes=len(names), width=0.25 if args.width is None else args.width,
            scale_skips=args.at_once,
            learn_final_upsampling=config.learn_final_upsampling,
            learn_skip_upsampling=config.learn_skip_upsampling, dropout=args.dropout,
        )
        model = FCN(cfg)
        info = ModelInfo(class_names=list(names), config=cfg, preprocessing=IMAGENET)
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
        print(format_scores({v: last[v] for v in VARIANTS if v in last}))
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


def _transfer_line(info) -> str:
    t = info.training
    kept = ", ".join(t["kept_classes"]) or "none"
    new = ", ".join(t["new_classes"]) or "none"
    return (f"new model for {info.num_classes} classes from the trunk of {t['trunk']!r}: "
            f"score weights kept for {kept}; new: {new}")
