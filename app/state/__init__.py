"""State objects: the documents, what is shown, the model in use, the model set and the
notification log.

Qt signals, no widgets: views and panels subscribe to them and never talk to each other.
"""

from __future__ import annotations
