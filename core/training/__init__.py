"""Training: per-pixel softmax cross-entropy over the 32s/16s/8s outputs, presets, the loop."""
