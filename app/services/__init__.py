"""Services the features get through their AppContext: settings, the project folder (autosave,
savers) and the inference commands (load, device, run, cancel, auto-run).
"""

from __future__ import annotations
