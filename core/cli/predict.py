"""``predict``: segment image files and folders, writing masks and maps.

For every input image and variant it writes ``<out>/<stem>_<variant>.png``, a palette PNG
of label indices colored with the model's class colors, and optionally an overlay, one
probability heatmap per class and the entropy map (:mod:`core.outputs`). Images are streamed
exactly in bands (:mod:`core.inference.streaming`); a prediction holds the labels and the
fused score maps, and each heatmap is computed from those when it is written. Files found in a
folder keep their subfolder under ``<out>``. An unreadable file prints one line naming it;
the others are still processed and the exit code is 2.
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from core.data.imageio import read_image
from core.errors import FCNStudioError
from core.outputs.files import InputFile, find_inputs, write_outputs
from core.variants import VARIANTS


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``predict`` subcommand on ``subparsers``; return its parser."""
    p = subparsers.add_parser(
        "predict",
        help="segment images and folders, writing palette PNG masks",
        description="Segment image files and folders (searched recursively). Writes "
        "<out>/<stem>_<variant>.png palette masks, and optionally overlays, per-class "
        "probability heatmaps and entropy maps.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files or folders")
    p.add_argument("--model", type=Path, help="checkpoint (default: the bundled model)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    p.add_argument(
        "--variant", default="8s", choices=[*VARIANTS, "all"], help="output(s) to write"
    )
    p.add_argument(
        "--out", type=Path, default=Path("predictions"), help="output folder (./predictions)"
    )
    p.add_argument(
        "--overlay", action="store_true", help="also write the image blended with the mask"
    )
    p.add_argument("--heatmaps", action="store_true", help="also write one heatmap per class")
    p.add_argument(
        "--entropy", action="store_true", help="also write the entropy (uncertainty) map"
    )
    p.add_argument(
        "--tile-size", type=int, default=None,
        help="rows per band of the exact streaming (default: the fastest, measured once per "
        "model and device)",
    )
    p.add_argument(
        "--backend", default=None,
        help="eager streams the layers as they are (NCHW fp32); other values (auto, torch, "
        "onnxruntime..., or $FCN_STUDIO_BACKEND) stream channels_last, fp16 trunk on CUDA",
    )
    p.set_defaults(func=run)
    return p



def _read_ahead(
    files: Sequence[InputFile], pool: ThreadPoolExecutor, depth: int = 2
) -> Iterator[tuple[InputFile, Future[np.ndarray]]]:
    """Yield ``(file, future image)`` while the next ``depth`` files are being read."""
    pending: deque[tuple[InputFile, Future[np.ndarray]]] = deque()
    it = iter(files)
    while True:
        while len(pending) < depth:
            item = next(it, None)
            if item is None:
                break
            pending.append((item, pool.submit(read_image, item.path)))
        if not pending:
            return
        yield pending.popleft()


def run(args: argparse.Namespace) -> int:
    """Run ``predict``: 0 when every image was written, 2 when any failed (each said).

    Raises:
        FCNStudioError: The model or device cannot be used (nothing is predicted).
    """
    from tqdm import tqdm

    from core.inference import Segmenter

    variants = VARIANTS if args.variant == "all" else (args.variant,)
    files, errors = find_inputs(args.inputs, exclude=args.out)
    for message in errors:
        print(f"error: {message}", file=sys.stderr)
    if not files:
        print("error: no images found in the given inputs", file=sys.stderr)
        return 2
    segmenter = Segmenter.from_checkpoint(
        args.model, device=args.device, tile_size=getattr(args, "tile_size", None),
        backend=getattr(args, "backend", None),
    )
    print(f"inference: {segmenter.description} on {segmenter.device}", file=sys.stderr)
    failed = len(errors)
    written = 0
    with ThreadPoolExecutor(max_workers=1) as pool, tqdm(
        total=len(files), desc="predict", unit="img", file=sys.stderr, dynamic_ncols=True
    ) as bar:
        for item, future in _read_ahead(files, pool):
            try:
                image = future.result()
                prediction = segmenter.predict(image, variants=variants)
                for message in prediction.messages:
                    tqdm.write(f"warning: {item.path}: {message}", file=sys.stderr)
                write_outputs(
                    args.out, item, image, prediction, segmenter.class_names,
                    segmenter.info.colors,
                    with_overlay=args.overlay, with_heatmaps=args.heatmaps,
                    with_entropy=args.entropy,
                )
                written += 1
            except (FCNStudioError, OSError) as exc:
                failed += 1
                text = str(exc) if str(item.path) in str(exc) else f"{item.path}: {exc}"
                tqdm.write(f"error: {text}", file=sys.stderr)
            bar.update(1)
    summary = f"{written} image(s) predicted into {args.out}"
    if failed:
        summary += f"; {failed} failed"
    print(summary, file=sys.stderr)
    return 2 if failed else 0
