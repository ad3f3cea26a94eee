"""What of this host the engine shares: whether it sees this host's files at their paths.

crane reads its source in a container of the engine. Where the engine sees
this host's files as they are, the source's path is bind-mounted into that
container, which costs nothing; elsewhere it is copied in through the
engine's API (``_archive``), which is always correct. A bind mount of a path
the engine does not see fails, or worse, mounts another file of the same
name: so the answer is True only when every check below says so, and a check
that cannot be made (an unknown platform, an unreadable ``/proc`` file, a
refused ``info``) answers False. Nothing is created to find out.

The checks, in order, each for a reason:

1. The engine is reached at a ``unix://`` socket, and this is Linux. A
   ``tcp://`` or ``ssh://`` engine is on another host as far as this library
   can tell (a ``tcp://`` one on 127.0.0.1 may be a VM's forwarded port);
   on macOS and Windows every engine runs in a VM (Docker Desktop, colima,
   Podman machine) that shares only some folders, at other paths.
2. The process at the other end of the socket (``SO_PEERCRED``: the one that
   listens on it) has this process's mount namespace and root directory: a
   path then names the same file for both. An engine in a mount namespace of
   its own resolves paths against other mounts: rootless Podman's and
   rootless Docker's, a snap's, one started with a ``/tmp`` of its own (the
   test bed's Docker Desktop-shaped engines). Reading another user's
   ``/proc/PID/ns/mnt`` needs the right to trace it, which a member of the
   ``docker`` group lacks for root's engine; its ``/proc/PID/mountinfo`` is
   readable by all, and mount ids are unique across namespaces, so the two
   mount tables are the same text only in the same namespace, seen from the
   same root. A mount made between the two reads (an engine mounts for each
   container it starts) is read again, a few times.
3. The engine's ``info`` does not say it is Docker Desktop
   (``OperatingSystem``), and its ``Name``, the engine's host name, is this
   host's. The process at the socket may be a forwarder in this namespace
   for an engine elsewhere: Desktop's own, colima's and Podman machine's,
   ``ssh -L``, socat. The engine behind it runs in a VM or on another
   machine, under another name.

The socket is connected to on a worker thread, bounded by a time limit.
"""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import anyio.to_thread

PROC = Path("/proc")
MOUNT_TABLE_READS = 5
"""How many times the two mount tables are read before a difference counts."""
MAX_MOUNT_TABLE = 16 << 20
"""The most bytes of a mount table read (a host with thousands of mounts has a few MB)."""

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def socket_path(address: str, platform: str = sys.platform) -> str | None:
    """The path of the engine's socket, for a ``unix://`` address on Linux; else None."""
    if platform != "linux" or not address.startswith("unix://"):
        return None
    return address.removeprefix("unix://") or None


def peer_pid(path: str, *, timeout: float) -> int | None:
    """The process that listens on the unix socket at ``path``; None where the kernel
    does not say (it is in a PID namespace this process does not see). Blocking.

    Raises:
        OSError: the socket cannot be connected to within ``timeout``.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        connection.connect(path)
        credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, _, _ = _UCRED.unpack(credentials)
    return pid if pid > 0 else None


def same_mounts(pid: int, proc: Path = PROC) -> bool:
    """Whether process ``pid`` has this process's mount namespace and root. Blocking.

    Asked of ``/proc/PID/ns/mnt`` and ``/proc/PID/root`` where this process
    may read them, else of the mount tables (see the module docstring).
    Anything else unreadable (the process is gone) is False.
    """
    theirs, ours = proc / str(pid), proc / "self"
    try:
        return _same_file(theirs / "ns" / "mnt", ours / "ns" / "mnt") and _same_file(
            theirs / "root", ours / "root"
        )
    except PermissionError:
        return same_mount_table(pid, proc)
    except OSError:
        return False


def _same_file(one: Path, other: Path) -> bool:
    first, second = one.stat(), other.stat()
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def same_mount_table(pid: int, proc: Path = PROC, *, reads: int = MOUNT_TABLE_READS) -> bool:
    """Whether process ``pid`` and this one see the same mount table, as the same text.

    Read again, up to ``reads`` times, while they differ: a mount made
    between the two reads is no difference of namespace. Blocking.
    """
    for _ in range(reads):
        try:
            if _mount_table(proc / str(pid)) == _mount_table(proc / "self"):
                return True
        except OSError:
            return False
    return False


def _mount_table(process: Path) -> bytes:
    with (process / "mountinfo").open("rb") as file:
        table = file.read(MAX_MOUNT_TABLE + 1)
    if len(table) > MAX_MOUNT_TABLE:
        raise OSError(f"{process}/mountinfo is over {MAX_MOUNT_TABLE} bytes")
    return table


def names_this_host(info: Mapping[str, object], hostname: str) -> bool:
    """Whether the engine's ``info`` says it runs on this host: not Docker Desktop, and
    under this host's name. A field that is missing is no answer: False."""
    system, name = info.get("OperatingSystem"), info.get("Name")
    if not isinstance(system, str) or not isinstance(name, str):
        return False
    return "docker desktop" not in system.lower() and name == hostname


def _peer_shares_mounts(path: str, timeout: float) -> bool:
    try:
        pid = peer_pid(path, timeout=timeout)
    except OSError:
        return False
    return pid is not None and same_mounts(pid)


async def shares_files(
    address: str,
    info: Callable[[], Awaitable[Mapping[str, object] | None]],
    *,
    timeout: float,
) -> bool:
    """Whether the engine at ``address`` certainly sees this host's files at their paths.

    ``info`` asks the engine for its ``info`` (None where it refused); it is
    asked only when the checks made here pass. ``timeout`` bounds the
    connection to the socket.

    Cancellation: the worker thread that connects is abandoned; it ends by
    itself within ``timeout``, and the cancellation propagates.
    """
    path = socket_path(address)
    if path is None:
        return False
    local = await anyio.to_thread.run_sync(
        _peer_shares_mounts, path, timeout, abandon_on_cancel=True
    )
    if not local:
        return False
    answer = await info()
    return answer is not None and names_this_host(answer, socket.gethostname())
