"""Exceptions raised by the core for bad input; each message names the offending file or value."""

from __future__ import annotations


class FCNStudioError(Exception):
    """Base class of every error the core raises for bad input. The message is user-facing."""


class ImageReadError(FCNStudioError):
    """An image file is missing, empty, corrupt, unsupported or too large."""


class MaskError(FCNStudioError):
    """A mask has the wrong size, dtype or labels outside the class range."""


class CheckpointError(FCNStudioError):
    """A checkpoint is missing, corrupt, unsafe or does not fit the model."""


class DatasetError(FCNStudioError):
    """A dataset folder does not have the expected layout."""


class ClassCountError(CheckpointError):
    """A checkpoint, mask or dataset disagrees on the number of classes."""


class DownloadError(FCNStudioError):
    """Weights could not be downloaded or verified (also raised when offline)."""


class Cancelled(Exception):  # a request, not an error: no "Error" suffix
    """Raised inside long operations (inference, training) when the user cancels them."""


class ArgumentError(FCNStudioError, ValueError):
    """An argument of a core function has an invalid value (NaN, infinite, wrong type...).

    Also a :class:`ValueError`, so callers that caught the plain ValueError keep working.
    """


class ConfigError(ArgumentError):
    """A setting (training option, model argument) has an invalid value.

    Also a :class:`ValueError`, so callers that validated settings as values keep working.
    """


class WriteError(FCNStudioError):
    """A file could not be written (full disk, read-only folder, name too long...)."""
