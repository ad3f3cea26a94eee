"""One registry's identity, and the state its parts share.

The ``Registry`` handle, the bring-up and the teardown each hold the same
``Session``: the registry's names, labels and secrets (credentials, its own
certificate authority, the token its answers carry), what exists now
(``created``), and the block's state (closed, kept, whether the caller saw
the bring-up's failure). A pusher gets only the parts it needs (a name,
labels, ``created``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from . import _labels
from ._resources import Created
from ._tls import Authority
from ._types import Credentials


@dataclass
class Session:
    """One registry, from entering its block to leaving it."""

    session_id: str
    """A random id, in every resource name and in the ``ephemeral-registry.session`` label."""
    credentials: Credentials | None
    authority: Authority | None = None
    """The registry's own certificate authority, with ``tls=True``."""
    ca_directory: Path | None = None
    """Where ``Endpoints.ca_file`` is, on this host; removed by the teardown."""
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    """A secret the registry sends back in every answer (``TOKEN_HEADER``): the proof
    that an address answering is this registry, before anything is sent to it."""
    owner: _labels.Owner = field(default_factory=_labels.Owner.current)
    created: Created = field(init=False)
    """What exists now, recorded as soon as each create answers."""
    closed: bool = False
    """The block has exited: the handle refuses every call."""
    kept: bool = False
    """``Registry.keep()`` was called: the exit leaves everything in place."""
    failure_seen: bool = False
    """The caller saw the bring-up's failure (from ``ready()`` or a push)."""

    def __post_init__(self) -> None:
        self.created = Created(self.name)

    @classmethod
    def new(cls, *, auth: bool, tls: bool = False) -> Session:
        session_id = _labels.new_session_id()
        return cls(
            session_id,
            Credentials.generate() if auth else None,
            Authority.generate(f"{_labels.PREFIX}-{session_id}") if tls else None,
        )

    @property
    def name(self) -> str:
        """The name of the registry container and of its network."""
        return f"{_labels.PREFIX}-{self.session_id}"

    def labels(self, role: str) -> dict[str, str]:
        """The labels of one of its resources."""
        return _labels.labels(self.session_id, self.owner, role)
