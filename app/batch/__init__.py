"""Segment All Images: batch inference over the file list, in a worker thread.

Model > Segment All Images… (Ctrl+Shift+R) opens a non-modal dialog; the batch loads the
window's current checkpoint in a thread of its own and writes what ``python -m core
predict`` writes (``<stem>_<variant>.png`` palette masks, optionally overlays).

Modules: :mod:`~app.batch.worker` (the worker, requests and summaries),
:mod:`~app.batch.runner` (its GUI-side owner), :mod:`~app.batch.dialog` and
:mod:`~app.batch.install` (the action and the messages).
"""

from __future__ import annotations

from app.batch.dialog import BatchDialog, BatchOptions
from app.batch.install import BatchUi, install_batch
from app.batch.runner import BatchRunner
from app.batch.worker import BatchRequest, BatchSummary, BatchWorker

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
