"""``labelme2voc``: a folder of labelme JSON files to a VOC segmentation dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.data.labelme import read_labels
from core.data.labelme_voc import labelme2voc


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``labelme2voc`` on the ``python -m core`` sub-command parser."""
    p = subparsers.add_parser(
        "labelme2voc", help="convert labelme JSON files to a VOC segmentation dataset",
        description="Convert a folder of labelme JSON files to a PASCAL VOC dataset, like "
        "labelme's examples/semantic_segmentation/labelme2voc.py: masks are pixel-identical. "
        "Labels come from a fixed list; an unknown label is an error.",
    )
    p.add_argument("input_dir", type=Path, help="folder of labelme .json files")
    p.add_argument("output_dir", type=Path, help="dataset folder to create (must not exist)")
    p.add_argument("--labels", required=True,
                   help="labels.txt (first line __ignore__, then _background_...) or "
                   "comma-separated names")
    p.add_argument("--noviz", action="store_true",
                   help="do not write SegmentationClassVisualization/")
    p.add_argument("--noobject", action="store_true",
                   help="accepted for compatibility; instance masks are never written")
    p.add_argument("--nonpy", action="store_true",
                   help="accepted for compatibility; .npy files are never written")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``labelme2voc`` from parsed arguments; print the output folder."""
    labels = read_labels(args.labels)
    ids = labelme2voc(args.input_dir, args.output_dir, labels, viz=not args.noviz)
    print(f"{len(ids)} images, classes {list(labels.class_names)}", file=sys.stderr)
    print(args.output_dir)
    return 0
