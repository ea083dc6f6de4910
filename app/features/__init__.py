"""Plug-in features (editing, finetune, models, batch, export), each installed with an
:class:`~app.features.host.AppContext` and a :class:`~app.features.host.WindowHost`.
A feature never imports the shell nor another feature.
"""

from __future__ import annotations
