"""Worker threads: the QThread helper, the job queue and one module per worker (inference,
model tasks, the model set, batch, fine-tune, VOC export). No widgets.
"""

from __future__ import annotations
