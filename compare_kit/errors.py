"""One hierarchy for every error compare_kit raises on purpose.

Each message says what was wrong and what would be accepted; the CLI turns any
``CompareKitError`` into exit code 2 with the message and no traceback.
"""

from __future__ import annotations


class CompareKitError(Exception):
    """Base class: a problem with the user's input or model, not a bug."""


class SpecError(CompareKitError):
    """The formula cannot be parsed, or an engine cannot express it."""


class DataError(CompareKitError):
    """The table does not fit the model (missing columns, bad values, ...)."""


class FitError(CompareKitError):
    """A model could not be fitted."""


class IncomparableError(CompareKitError):
    """Two fits cannot be compared (different data or structure)."""


class OutputError(CompareKitError):
    """An output file or folder cannot be written."""
