"""The docks' widgets (Files, Classes, Statistics, Model, Messages). Like views, they only
subscribe to the state.
"""

from __future__ import annotations
