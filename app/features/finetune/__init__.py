"""Fine-tuning on the user's corrections: dock, loss curve, versions.

Built on :func:`core.training.finetune.fine_tune` (fast: heads only on cached features;
full: every layer). Each run saves a new checkpoint version whose parent is the model it
started from; Model > Versions switches between them.
"""

from __future__ import annotations
