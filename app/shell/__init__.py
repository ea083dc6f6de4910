"""The main window: layout, actions and menus, the status bar, shortcuts; it builds the
AppContext and installs the features.
"""

from __future__ import annotations
