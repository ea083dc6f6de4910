"""The defaults of training on the user's labels, torch-free (the app's dock reads them
before torch is imported; the CLI's ``train --heads-only`` uses the same ones).

Fast mode trains the heads (score layers, skip deconvolutions) on cached trunk features:
seconds on a CPU. Full mode trains every layer: for a GPU.
"""

from __future__ import annotations

MODE_DEFAULTS: dict[str, tuple[int, float]] = {"fast": (200, 1e-2), "full": (500, 1e-4)}
"""``{mode: (iterations, learning rate)}`` of :class:`core.training.finetune.FineTuneConfig`."""

SEED = 0
"""The seed of the image order, the pixel grids and the flips of a run."""
