"""Correct a prediction with the image and the model: edge-aware mean-field refinement and
click / scribble correction on cached trunk features (Qt-free)."""
