"""The labels on every container and network this library creates.

Each resource names its session and its owner process (host name, process
id, process start time), so that what a dead process left behind can be told
apart from what a live one still uses.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

PREFIX = "ephemeral-registry"
SESSION = f"{PREFIX}.session"
ROLE = f"{PREFIX}.role"
OWNER_HOST = f"{PREFIX}.owner.host"
OWNER_PID = f"{PREFIX}.owner.pid"
OWNER_STARTED = f"{PREFIX}.owner.started"


@dataclass(frozen=True)
class Owner:
    """The process that owns a resource."""

    host: str
    pid: int
    started: str
    """The process start time in clock ticks since boot (Linux), or ``""`` where unknown.

    A process id can be reused; the pair (pid, start time) cannot.
    """

    @classmethod
    def current(cls) -> Owner:
        pid = os.getpid()
        return cls(host=socket.gethostname(), pid=pid, started=process_start_time(pid))


def process_start_time(pid: int) -> str:
    """The start time of process ``pid`` from ``/proc``, or ``""`` where there is no ``/proc``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = stat.rpartition(")")[2].split()
    return fields[19]  # field 22 of the whole line: starttime


def new_session_id() -> str:
    """A short random id; also part of every resource name, so registries never collide."""
    return secrets.token_hex(6)


def labels(session_id: str, owner: Owner, role: str) -> dict[str, str]:
    """The labels for one resource of a session."""
    return {
        SESSION: session_id,
        ROLE: role,
        OWNER_HOST: owner.host,
        OWNER_PID: str(owner.pid),
        OWNER_STARTED: owner.started,
    }
