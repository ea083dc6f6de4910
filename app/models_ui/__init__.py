"""Model management in the app: import, download, ONNX export and the compare view's model set.

Kept light on purpose (no submodule is imported here): :mod:`app.compare_view` imports
:mod:`app.models_ui.model_set`, and the window builds :class:`app.models_ui.commands.ModelsUI`.

| Module | Holds |
|---|---|
| ``checkpoints`` | torch-free checkpoint header reading, the model library folder |
| ``tasks`` | the import / download / export worker and its GUI-side runner (one QThread) |
| ``model_set`` | which checkpoint each of the compare view's 32s/16s/8s panes shows |
| ``set_runner`` | inference of the model set's checkpoints (another QThread) |
| ``download_dialog``, ``model_set_dialog`` | the two dialogs |
| ``commands`` | the Model menu's handlers, wiring it all into the window |
"""

from __future__ import annotations
