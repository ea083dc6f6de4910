"""The three tabs (Viewer, Compare, Heatmaps). Views subscribe to the state; they never import
features, workers or the shell.
"""

from __future__ import annotations
