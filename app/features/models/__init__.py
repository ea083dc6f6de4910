"""Model management in the app: import, download, ONNX export and the compare view's model set.

| Module | Holds |
|---|---|
| ``install`` | ``ModelsUI``: the Model menu's handlers (import, downloads, library, ONNX) |
| ``download_dialog``, ``model_set_dialog`` | the two dialogs |

The model set itself is state (:mod:`app.state.model_set`), its workers are
:mod:`app.workers.model_tasks` and :mod:`app.workers.model_set_runner`, checkpoint headers
are read by :mod:`app.common.checkpoints`.
"""

from __future__ import annotations
