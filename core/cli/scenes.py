"""``make-scenes``: write a generated VOC-layout dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.errors import FCNStudioError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``make-scenes``."""
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


