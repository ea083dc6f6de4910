"""``convert``, ``download`` and ``export-onnx``: published and converted model files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.errors import FCNStudioError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``convert``, ``download`` and ``export-onnx`` with ``python -m core``."""
    p = sub.add_parser(
        "convert", help="convert Caffe / pytorch-fcn / safetensors weights to a checkpoint",
        description="Convert a reference FCN .caffemodel, a pytorch-fcn .pth state dict or a "
        "safetensors file into an FCN Studio checkpoint (.safetensors with metadata). The "
        "variant (32s/16s/8s), class count and width are detected; every shape is checked.",
    )
    p.add_argument("input", type=Path, help=".caffemodel, .pth, .pt or .safetensors")
    p.add_argument("output", type=Path, help="the .safetensors checkpoint to write")
    p.add_argument("--at-once", action="store_const", const=True, default=None,
                   help="FCN-8s at-once (pool4 x 0.01, pool3 x 0.0001); detected from the "
                   "scale layers or an 'atonce' file name otherwise")
    p.add_argument("--classes", type=Path, help="text file with one class name per line")
    p.add_argument("--name", help="model name stored in the checkpoint")
    p.set_defaults(func=_run_convert)

    p = sub.add_parser(
        "download", help="download (and convert) the published FCN weights",
        description="Download published FCN weights into the cache (resumable, verified) and "
        "convert them to FCN Studio checkpoints. Without NAME: list the models.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="published model names")
    p.add_argument("--list", action="store_true", help="list the published models")
    p.add_argument("--no-convert", action="store_true", help="keep only the downloaded file")
    p.add_argument("--dir", type=Path, help="download folder (default: the cache's models/)")
    p.set_defaults(func=_run_download)

    p = sub.add_parser(
        "export-onnx", help="export a checkpoint to ONNX (dynamic batch, height and width)",
        description="Export the 32s/16s/8s outputs (score_32s, score_16s, score_8s) to ONNX. "
        "The input is float32 NCHW, already preprocessed (see the metadata) unless "
        "--uint8-input builds the preprocessing into the graph.",
    )
    p.add_argument("output", type=Path, help="the .onnx file to write")
    p.add_argument("--model", type=Path, help="checkpoint (default: the bundled model)")
    p.add_argument("--variants", default="32s,16s,8s", help="outputs to export, e.g. 8s")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--uint8-input", action="store_true",
                   help="take uint8 RGB NCHW images and preprocess inside the graph")
    p.set_defaults(func=_run_export)


def _run_convert(args: argparse.Namespace) -> int:
    from core.checkpoints.convert import convert
    from core.data.palette import read_class_names

    names = read_class_names(args.classes, error=FCNStudioError) if args.classes else None
    info = convert(args.input, args.output, at_once=args.at_once, class_names=names,
                   name=args.name)
    t = info.training
    kind = f"FCN-{t.get('variant', '?')}{' at-once' if info.config.scale_skips else ''}"
    print(f"{args.output}: {kind}, {info.num_classes} classes, width {info.config.width:g}, "
          f"id {info.id}")
    return 0


def _run_download(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.checkpoints import download

    if args.list or not args.names:
        print(download.format_registry())
        return 0
    for name in args.names:
        with tqdm(desc=name, unit="B", unit_scale=True, unit_divisor=1024,
                  file=sys.stderr) as bar:
            def show(done: int, total: int | None, bar: tqdm = bar) -> None:
                if total and bar.total != total:
                    bar.total = total
                bar.update(done - bar.n)

            path = download.fetch_published(name, convert=not args.no_convert,
                                            dest_dir=args.dir, progress=show)
        print(path)
    return 0


def _run_export(args: argparse.Namespace) -> int:
    from core.checkpoints.onnx import export_onnx
    from core.paths import default_model_path

    variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    out = export_onnx(args.model or default_model_path(), args.output, variants=variants,
                      opset=args.opset, uint8_input=args.uint8_input)
    print(out)
    return 0
