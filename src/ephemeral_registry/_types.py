"""Values the library hands back to its callers."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class Credentials:
    """The user name and password of a registry made with ``auth=True``."""

    username: str
    password: str = field(repr=False)

    @classmethod
    def generate(cls) -> Credentials:
        return cls(username="ephemeral", password=secrets.token_urlsafe(32))

    @property
    def basic(self) -> str:
        """``base64(username:password)``, as in an ``Authorization: Basic`` header."""
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


@dataclass(frozen=True)
class Endpoints:
    """Where a ready registry can be reached."""

    network: str
    """The name of the private Docker network the registry is on."""
    push_endpoint: str
    """``<container-name>:5000``: reachable from containers on ``network``."""
    pull_endpoint: str
    """``<host-ip>:<port>``: reachable from processes on the host."""
    credentials: Credentials | None = None
    """The user name and password to pull with, for a registry made with ``auth=True``."""
    ca_certificate: bytes | None = field(default=None, repr=False)
    """The PEM certificate of the CA that signed the registry's, for a registry made with
    ``tls=True``: trust it (alone) to pull over HTTPS."""
    ca_file: Path | None = None
    """The same certificate in a file (``ca.crt``), removed with the registry."""

    @property
    def scheme(self) -> str:
        """``https`` for a registry made with ``tls=True``, else ``http``."""
        return "http" if self.ca_certificate is None else "https"


@dataclass(frozen=True)
class ContainerState:
    """What the engine said of a container when an error was raised."""

    status: str
    """The engine's word for it: ``created``, ``running``, ``exited``, ``dead``, ..."""
    exit_code: int | None
    """The exit code, once the container has exited; ``None`` while it runs."""
    error: str
    """The engine's error message for the container, often empty."""
    oom_killed: bool = False
    """Whether the kernel killed it for running out of memory."""


@dataclass(frozen=True)
class PushResult:
    """What a push put in the registry, as references a host process can pull."""

    ref: str
    """``<pull_endpoint>/<repo>:<tag>``."""
    digest: str
    """``sha256:...``, the digest of the manifest pushed (of the index, for several platforms)."""
    digest_ref: str
    """``<pull_endpoint>/<repo>@<digest>``: the same image, immune to re-tagging."""


class LogLine(str):
    """One line of a push's output: a ``str``, plus the stream it came from.

    crane's lines come on its own streams; the native pusher's, and this
    library's own (as a blob is pushed, the digest), on ``stderr``.
    """

    stream: Literal["stdout", "stderr"]

    def __new__(cls, text: str, stream: Literal["stdout", "stderr"]) -> LogLine:
        line = super().__new__(cls, text)
        line.stream = stream
        return line

    def __getnewargs__(self) -> tuple[str, Literal["stdout", "stderr"]]:  # type: ignore[override]
        # What pickle and copy pass to __new__: str's would leave out the stream.
        return str(self), self.stream


OnLog = Callable[[LogLine], object]
"""A plain or async callable that takes each line of a push's output as it comes."""

OnProgress = Callable[[int, "int | None"], object]
"""A plain or async callable taking ``(done_bytes, total_bytes or None)`` as a push goes on."""
