"""What a prediction writes to disk: palette masks, overlays and heatmaps (Qt-free, torch-free).

Imports only :mod:`core.data` and the leaf modules.
"""
