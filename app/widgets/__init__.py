"""General widgets and menu helpers, shared by views, panels and features.
"""

from __future__ import annotations
