"""The directories this library makes on this host, named after their owner.

Five kinds of directory are made here, each private (mode 0700), in the
system's temporary directory:

- ``ca``: a TLS registry's CA certificate (``Endpoints.ca_file``), for the
  life of its session;
- ``export``: an image exported for crane (``docker save`` or an OCI
  layout), for the length of one push;
- ``ssh``: the socket forwarded to an engine reached over SSH, for the
  length of the connection;
- ``sshconfig``: checked copies of the user's SSH configuration, for
  asyncssh to read while it connects (see ``_ssh_files``);
- ``tls``: a checked copy of the engine's client certificate and key, for
  ``ssl`` to load (it loads a chain from a path only), for an instant.

Each one's owner removes it on the way out; a killed owner cannot. So each
name says who made it, as a container's labels do::

    ephemeral-registry-<kind>-<session or "none">-<host>-<pid>-<start time>-<random>

``<host>`` is a digest of the host name (a name is long, and a socket's
path must be short); ``<start time>`` is empty where there is no ``/proc``.
``_sweep`` judges the owner as it does a container's; this module only
makes, finds and removes the directories.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import _labels

logger = logging.getLogger("ephemeral_registry")

Kind = Literal["ca", "export", "ssh", "sshconfig", "tls"]

NO_SESSION = "none"
"""In the name of a directory that belongs to no session (an SSH connection's)."""

_NAME = re.compile(
    rf"{re.escape(_labels.PREFIX)}-(?P<kind>ca|export|ssh|sshconfig|tls)"
    r"-(?P<session>[0-9a-f]+|none)-(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-(?P<started>[0-9]*)"
    r"-[a-z0-9_]+"  # tempfile's random part
)

FALLBACK_DIRECTORY = "/tmp"
"""Where a directory goes when the temporary directory's path is too long for a socket."""


@dataclass(frozen=True)
class Scratch:
    """One of our directories, as its name describes it."""

    path: Path
    kind: Kind
    session: str | None
    """``None`` for a directory of no session."""
    host: str
    """A digest of the owner's host name (``host_digest``)."""
    pid: int
    started: str
    """The owner's start time, as in its labels; ``""`` where unknown."""


def host_digest(host: str) -> str:
    """The short stand-in for a host name in a directory's name."""
    return hashlib.sha256(host.encode()).hexdigest()[:8]


def make(kind: Kind, *, session: str | None, directory: str | None = None) -> Path:
    """Make a private directory of ``kind`` for this process (and ``session``), in
    ``directory`` (default: the temporary directory); return its path.

    Blocking (a thread's work); nothing to cancel.
    """
    owner = _labels.Owner.current()
    prefix = "-".join(
        (
            _labels.PREFIX,
            kind,
            session or NO_SESSION,
            host_digest(owner.host),
            str(owner.pid),
            owner.started,
            "",  # tempfile's random part follows
        )
    )
    return Path(tempfile.mkdtemp(prefix=prefix, dir=directory))


@contextlib.contextmanager
def made(kind: Kind, *, session: str | None) -> Iterator[Path]:
    """A directory of ``make``, removed with everything in it on exit, by any path."""
    path = make(kind, session=session)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def parse(path: Path) -> Scratch | None:
    """What ``path``'s name says of its owner; ``None`` for a name not of ours."""
    match = _NAME.fullmatch(path.name)
    if match is None:
        return None
    session = match["session"]
    return Scratch(
        path=path,
        kind=match["kind"],  # type: ignore[arg-type]  # the pattern allows only a Kind
        session=None if session == NO_SESSION else session,
        host=match["host"],
        pid=int(match["pid"]),
        started=match["started"],
    )


def places() -> list[Path]:
    """Where our directories are made: the temporary directory, and the fallback."""
    found = [Path(tempfile.gettempdir()), Path(FALLBACK_DIRECTORY)]
    return list(dict.fromkeys(found))


def find(where: list[Path] | None = None) -> list[Scratch]:
    """Our directories in ``where`` (default ``places()``): named as ours, real directories
    (never a symbolic link), owned by this user. Blocking; nothing to cancel."""
    found = []
    uid = os.getuid()
    for place in places() if where is None else where:
        try:
            entries = list(os.scandir(place))
        except OSError:
            continue
        for entry in entries:
            scratch = parse(Path(entry.path))
            if scratch is None:
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:  # gone meanwhile
                continue
            if stat.S_ISDIR(info.st_mode) and info.st_uid == uid:
                found.append(scratch)
    return sorted(found, key=lambda scratch: scratch.path)


def remove(scratch: Scratch) -> bool:
    """Remove one of our directories and what is in it; whether it was there to remove.

    ``shutil.rmtree`` follows no symbolic link out of it, and refuses one in
    its place. Blocking; nothing to cancel.
    """
    try:
        shutil.rmtree(scratch.path)
    except FileNotFoundError:  # another sweep was quicker
        return False
    except OSError as exc:
        logger.debug("cannot remove %s: %s", scratch.path, exc)
        return False
    return True
