"""How a run's masks started: a mask started from a prediction *is* that prediction where
it was not corrected, so the before scores on it favour that variant (the dock says so)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_INSPECTED = 8
"""Corrected masks of unknown start (saved in an earlier session) read to tell whether they
started from a prediction (on the GUI thread, once a run's results arrive)."""


@dataclass(frozen=True)
class PredictionStarts:
    """How many of a run's corrected masks started from a prediction of the old model.

    Such a mask *is* that prediction wherever it was not corrected, so scores against it
    favour that variant before the fine-tune.

    Attributes:
        variants: Images per variant whose prediction the mask started from.
        unknown: Images whose mask started from a prediction of an unknown variant (read
            from the project: corrected in an earlier session).
        images: The run's corrected images.
        measured_all: The scores cover every pixel of the masks (not the corrected pixels
            alone, where the start's bias does not apply).
    """

    variants: dict[str, int] = field(default_factory=dict)
    unknown: int = 0
    images: int = 0
    measured_all: bool = True

    @property
    def count(self) -> int:
        """Images whose mask started from a prediction."""
        return sum(self.variants.values()) + self.unknown

    @property
    def applies(self) -> bool:
        """Whether the before scores on the corrected images favour a start variant."""
        return self.measured_all and self.count > 0


def count_starts(job: Any, seen: dict[Path, str | None]) -> PredictionStarts:
    """Which of ``job``'s masks started from a prediction: those started in this session
    are in ``seen`` (image -> variant, None: another start); up to :data:`MAX_INSPECTED`
    others are read from the project (a saved correction record whose uncorrected pixels
    are not one constant label, as an empty start's are, is a prediction's)."""
    variants: dict[str, int] = {}
    unknown, inspected = 0, 0
    for image_id in job.ids:
        path = job.project.image_path(image_id).resolve()
        if path in seen:
            variant = seen[path]
            if variant is not None:
                variants[variant] = variants.get(variant, 0) + 1
        elif inspected < MAX_INSPECTED:
            inspected += 1
            unknown += started_from_prediction(job.project, image_id)
    return PredictionStarts(variants, unknown, len(job.ids),
                            not bool(job.config.corrected_only))


def started_from_prediction(project: Any, image_id: str) -> bool:
    """Whether a saved corrected mask started from a prediction: it has a correction
    record (not the user's whole mask) and its uncorrected pixels are not all one label of
    an empty start (background or void). Unreadable files count as not."""
    import numpy as np

    from core.errors import FCNStudioError

    try:
        saved = project.load_pair(image_id)
    except (FCNStudioError, OSError, ValueError):
        return False
    if saved is None or saved.whole or saved.corrections is None:
        return False
    rest = saved.mask[~np.asarray(saved.corrections, bool)]
    if rest.size == 0:
        return False
    low, high = int(rest.min()), int(rest.max())
    return low != high or low not in (0, 255)
