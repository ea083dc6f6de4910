"""FCN Studio core: a Qt-free PyTorch implementation of FCN-32s/16s/8s.

Importing :mod:`core` is cheap: it does not import torch. Submodules (``core.models``,
``core.training``, ``core.inference``...) import torch when they are imported.
"""

from __future__ import annotations

from core.errors import FCNStudioError

__version__ = "0.1.0"
__all__ = ["FCNStudioError", "__version__"]
