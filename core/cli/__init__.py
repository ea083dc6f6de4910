"""The command line: ``python -m core COMMAND --help`` (train, evaluate, predict, ...).

All argument parsing lives in this package, one module per command group; the library
modules under :mod:`core` never import it. Building the parser imports no torch.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from core.cli import evaluate, labelme, models, predict, scenes, train
from core.errors import Cancelled, FCNStudioError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m core`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m core", description="FCN Studio: FCN-32s/16s/8s from the command line."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train.add_parser(sub)
    evaluate.add_parser(sub)
    predict.add_parser(sub)
    scenes.add_parser(sub)
    labelme.add_parser(sub)
    models.add_parser(sub)
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
