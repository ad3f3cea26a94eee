"""The errors the readers raise: the bytes are not of the expected form."""

from __future__ import annotations


class FormatError(ValueError):
    """Input that is not of the form expected. Internal: callers translate it into their
    own error (``InvalidSourceError``, ``ExportError``), saying whose input it was."""


class NotForPlatform(FormatError):
    """Input that holds images, but none for the platform asked for (``available`` lists
    theirs). Callers translate it into ``ImageNotFoundError``."""

    def __init__(self, wanted: str, available: tuple[str, ...]) -> None:
        held = ", ".join(available) or "none"
        super().__init__(f"it holds no image for the platform {wanted} (it holds: {held})")
        self.wanted = wanted
        self.available = available
