"""Test configuration: offscreen Qt, deterministic torch threads, shared fixtures."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("FCN_STUDIO_OFFLINE", "1")
