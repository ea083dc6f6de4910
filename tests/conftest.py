"""Test configuration: offscreen Qt, deterministic torch threads, shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("FCN_STUDIO_OFFLINE", "1")


def break_image_writes(monkeypatch, message: str = "disk went away") -> None:
    """Make every PIL image write leave a truncated file behind and then fail with
    ``OSError(message)``: a crash midway, to check that writes are atomic."""
    import PIL.Image

    real_save = PIL.Image.Image.save

    def half_save(self, fp, *args, **kwargs):
        real_save(self, fp, *args, **kwargs)
        with open(fp, "r+b") as fh:
            fh.truncate(10)
        raise OSError(message)

    monkeypatch.setattr(PIL.Image.Image, "save", half_save)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread for a module: tiny convolutions gain nothing from more, and the CPU
    is shared. Use it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
