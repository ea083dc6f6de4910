"""Segment All Images: batch inference over the file list, in a worker thread.

Model > Segment All Images… (Ctrl+Shift+R) opens a non-modal dialog; the batch loads the
window's current checkpoint in a thread of its own and writes what ``python -m core
predict`` writes (``<stem>_<variant>.png`` palette masks, optionally overlays).

Modules: :mod:`~app.workers.batch` (the worker, requests and summaries),
:mod:`~app.workers.batch_runner` (its GUI-side owner), :mod:`~app.features.batch.dialog` and
:mod:`~app.features.batch.install` (the action and the messages).
"""

from __future__ import annotations

from app.features.batch.dialog import BatchDialog, BatchOptions
from app.features.batch.install import BatchUi, install_batch
from app.workers.batch import BatchRequest, BatchSummary, BatchWorker
from app.workers.batch_runner import BatchRunner

__all__ = [
    "BatchDialog",
    "BatchOptions",
    "BatchRequest",
    "BatchRunner",
    "BatchSummary",
    "BatchUi",
    "BatchWorker",
    "install_batch",
]
