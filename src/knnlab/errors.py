"""The one exception type for mistakes a user can fix.

The CLI turns a :class:`KnnlabError` into a one-line message and a non-zero exit, with no traceback.
Library code raises it (or a subclass) with a message that names the argument, its value, what is
allowed and how to fix it.
"""

from __future__ import annotations

__all__ = ["DataNotFoundError", "InputError", "KnnlabError"]


class KnnlabError(Exception):
    """A user-facing error: bad input, missing data, an impossible configuration."""


class InputError(KnnlabError, ValueError):
    """An argument or an input file is not acceptable (wrong shape, NaN values, unreadable...)."""


class DataNotFoundError(KnnlabError, FileNotFoundError):
    """A data set, checkpoint or file that the call needs is not where it was looked for."""
