"""Launch FCN Studio: ``python main.py [IMAGES or FOLDERS] [--model CKPT]``."""

from __future__ import annotations

import sys

from app.main import main

if __name__ == "__main__":
    sys.exit(main())
