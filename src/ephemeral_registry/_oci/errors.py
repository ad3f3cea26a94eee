"""The one error the readers raise: the bytes are not of the expected form."""

from __future__ import annotations


class FormatError(ValueError):
    """Input that is not of the form expected. Internal: callers translate it into their
    own error (``InvalidSourceError``, ``ExportError``), saying whose input it was."""
