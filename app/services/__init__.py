"""Services the features get through their AppContext: settings, notifications, the project
folder and the inference commands.
"""

from __future__ import annotations
