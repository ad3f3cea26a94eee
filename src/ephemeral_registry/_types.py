"""Values the library hands back to its callers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoints:
    """Where a ready registry can be reached."""

    network: str
    """The name of the private Docker network the registry is on."""
    push_endpoint: str
    """``<container-name>:5000``: reachable from containers on ``network``."""
    pull_endpoint: str
    """``<host-ip>:<port>``: reachable from processes on the host."""


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
