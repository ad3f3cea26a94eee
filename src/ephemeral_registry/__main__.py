"""``python -m ephemeral_registry``: the same as the ``ephemeral-registry`` command."""

from ._cli import entry_point

entry_point()
