"""``evaluate``: the paper's four metrics for each of the 32s/16s/8s outputs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``evaluate``."""
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




def _run_evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.checkpoints.checkpoint import load_checkpoint
    from core.data.voc import open_dataset
    from core.inference.devices import pick_device
    from core.paths import default_model_path
    from core.training.evaluate import evaluate

    device = pick_device(args.device)
    model, info = load_checkpoint(args.model or default_model_path(), device=device)
    pairs, names = open_dataset(args.data, split=args.split)
    check_classes(names, info.class_names, args.data)
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


def check_classes(data_names: Sequence[str], model_names: Sequence[str], where) -> None:
    from core.errors import ClassCountError

    if list(data_names) != list(model_names):
        raise ClassCountError(
            f"{where} has {len(data_names)} classes {list(data_names)[:8]}, the model has "
            f"{len(model_names)} {list(model_names)[:8]}"
        )


