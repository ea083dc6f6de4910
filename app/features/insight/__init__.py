"""Insight: why the FCN sees what it sees: skip streams, receptive fields, fc layers as
convolutions and uncertainty, on the current image and model (``core.insight``, run in a
worker thread)."""
