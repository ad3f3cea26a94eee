"""``Running``: what the bring-up (``_bring_up``) hands on, a registry that answers.

A module of its own so that those who use a running registry (the pushers,
the watch on its container) need not import the bring-up, which is above
them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._types import Endpoints


@dataclass(frozen=True)
class Running:
    """A registry that answers: where to reach it, and its container."""

    endpoints: Endpoints
    container_id: str
    address: str | None
    """The container's address on the registry's network, where the engine says."""
    gateway: str | None = None
    """That network's gateway: this host's own address when the network is this host's."""
    token: str = ""
    """What the registry sends in ``TOKEN_HEADER``: proof that an answer is its own."""
