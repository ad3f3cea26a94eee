"""Engines reached over SSH: ``ssh://[user@]host[:port][/socket]``, as the docker CLI writes it.

One SSH connection (asyncssh) carries everything: the engine's socket on the
other host (``/var/run/docker.sock`` unless the URL names another, as
Podman's ``ssh://`` connections do) is forwarded to a socket of this
process's own in a private directory, which the engine's client talks to,
and the tunnels to the registry's published port go over it too.

Why asyncssh and not the docker CLI's ``ssh HOST docker system dial-stdio``:
the CLI starts one ``ssh`` process, one handshake, for every connection the
client opens, and the library opens several at once (a push follows its logs
while it waits for the container); dial-stdio also needs the docker CLI on
the other host, which a Podman host rarely has. asyncssh opens one
connection and a channel per request, and reads what the ``ssh`` command
reads: ``~/.ssh/config`` (``Host``, ``HostName``, ``User``, ``Port``,
``IdentityFile``, ``ProxyJump``, ...), the agent at ``SSH_AUTH_SOCK``, the
default keys and ``~/.ssh/known_hosts``; those files are read here, checked
and bounded, and handed to asyncssh as copies and values (``_ssh_files``).
A host whose key is not known there is refused, as ``ssh`` with
``StrictHostKeyChecking`` does: connect once with ``ssh`` to check it and
add it.

Needs the ``ssh`` extra (asyncssh).

Cancellation: the connection is closed, shielded and bounded, whatever
ends its block; its private directory is removed.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import anyio

from . import _scratch, _ssh_files
from ._errors import DockerUnavailableError

if TYPE_CHECKING:
    import asyncssh

logger = logging.getLogger("ephemeral_registry")

ADVICE = "Check that `ssh HOST` (with the user and port of the URL) gets in without a question."
"""What an SSH failure's error advises."""
FILES_ADVICE = (
    "Make it a regular, readable file of the right format (or remove it), then check that"
    " `ssh HOST` gets in without a question."
)
"""What an error about a file of ``~/.ssh`` advises."""
DEFAULT_SOCKET = "/var/run/docker.sock"
"""The engine's socket on the other host, unless the URL names one."""
CLOSE_TIMEOUT = 5.0
"""How long closing the connection may take."""
MAX_SOCKET_PATH = 100
"""A socket's path has at most 107 bytes on Linux (``sun_path``)."""


@dataclass(frozen=True)
class Target:
    """Where an ``ssh://`` URL points: a host, and the engine's socket there."""

    host: str
    port: int | None
    user: str | None
    socket: str

    @classmethod
    def of(cls, url: str) -> Target:
        """The target of ``url`` (checked by ``_addresses.check_address`` first)."""
        parts = urlsplit(url)
        return cls(
            host=parts.hostname or "",
            port=parts.port,
            user=unquote(parts.username) if parts.username else None,
            socket=unquote(parts.path) if parts.path not in ("", "/") else DEFAULT_SOCKET,
        )


class Connection:
    """One SSH connection to an engine's host: its socket forwarded here, and tunnels."""

    def __init__(self, url: str, connection: asyncssh.SSHClientConnection, socket: str) -> None:
        self._url = url
        self._connection = connection
        self.socket = socket
        """A socket here that reaches the engine's socket there."""

    async def tunnel(self, host: str, port: int) -> int:
        """Forward a new port on this host's loopback to ``host:port`` as the engine's
        host reaches it; return the port here. It closes with the connection.

        Raises:
            DockerUnavailableError: the connection is gone, or no port could be opened.
        """
        import asyncssh

        try:
            listener = await self._connection.forward_local_port("127.0.0.1", 0, host, port)
        except (OSError, asyncssh.Error) as exc:
            raise DockerUnavailableError(
                self._url, f"cannot open a tunnel to {host}:{port} on the engine's host ({exc})"
            ) from exc
        local = listener.get_port()
        logger.debug("tunnel: 127.0.0.1:%d -> %s:%d on %s", local, host, port, self._url)
        return local


@contextlib.asynccontextmanager
async def connected(url: str, *, timeout: float) -> AsyncIterator[Connection]:
    """An SSH connection to the engine at ``url``, its socket forwarded to one here.

    The engine's socket is tried once before this yields, so that a host
    without an engine there is said to be one.

    Raises:
        DockerUnavailableError: the host cannot be reached, its key is not
            known, authentication failed, or no engine listens at the socket;
            the reason says which. Also when asyncssh is missing.

    Cancellation: the connection is closed (shielded, bounded) and the
    cancellation propagates.
    """
    try:
        import asyncssh
    except ImportError:
        raise DockerUnavailableError(
            url, "an ssh:// engine needs asyncssh: pip install 'ephemeral-registry[ssh]'"
        ) from None
    target = Target.of(url)
    try:
        # Not abandoned on cancellation: it owns a private directory, and its
        # reads are bounded and never block (``_files``), so it ends soon.
        files = await anyio.to_thread.run_sync(
            functools.partial(_ssh_files.prepare, target.host, target.port, target.user)
        )
    except _ssh_files.SshFileError as exc:
        raise DockerUnavailableError(
            url, f"cannot use this user's SSH setup: {exc}", advice=FILES_ADVICE
        ) from None
    options: dict[str, Any] = {"connect_timeout": timeout, **files.options()}
    if target.port is not None:
        options["port"] = target.port
    if target.user is not None:
        options["username"] = target.user
    try:
        with anyio.fail_after(timeout):
            connection = await asyncssh.connect(target.host, **options)
    except TimeoutError:
        raise DockerUnavailableError(
            url,
            f"the SSH server did not answer within {timeout:g} s (request_timeout)",
            advice=ADVICE,
        ) from None
    except asyncssh.HostKeyNotVerifiable as exc:
        raise DockerUnavailableError(
            url,
            f"the host key of {target.host} is not known ({exc.reason}); connect once with"
            " ssh to check it and add it to ~/.ssh/known_hosts",
            advice=ADVICE,
        ) from None
    except asyncssh.PermissionDenied as exc:
        raise DockerUnavailableError(
            url,
            f"SSH authentication to {target.host} failed ({exc.reason}): no key of the agent,"
            " of ~/.ssh or of ~/.ssh/config was accepted",
            advice=ADVICE,
        ) from None
    except (OSError, asyncssh.Error) as exc:
        raise DockerUnavailableError(
            url, f"cannot connect over SSH ({exc})", advice=ADVICE
        ) from None
    except (ValueError, RecursionError) as exc:
        # asyncssh's refusal of a value: a user name SASLprep forbids, an option
        # of the config (ConfigParseError), an agent's answer it cannot parse.
        raise DockerUnavailableError(
            url, f"asyncssh refused the SSH setup ({type(exc).__name__}: {exc})", advice=ADVICE
        ) from None
    finally:
        files.remove()  # asyncssh has read the copies by now
    directory = None
    try:
        await _try_socket(url, connection, target)
        directory = await anyio.to_thread.run_sync(_socket_directory)
        socket = str(Path(directory) / "engine.sock")
        try:
            await connection.forward_local_path(socket, target.socket)
        except OSError as exc:
            raise DockerUnavailableError(
                url, f"cannot make the engine's socket here, {socket} ({exc})"
            ) from None
        yield Connection(url, connection, socket)
    finally:
        with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
            connection.close()
            await connection.wait_closed()
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


def _socket_directory() -> str:
    """A private directory for the forwarded socket: in the temporary directory, or in
    ``/tmp`` where that one's path is too long for a socket."""
    # Named after its owner: a sweep removes it once this process is gone.
    directory = str(_scratch.make("ssh", session=None))
    if len(os.fsencode(directory)) + len("/engine.sock") <= MAX_SOCKET_PATH:
        return directory
    os.rmdir(directory)
    return str(_scratch.make("ssh", session=None, directory=_scratch.FALLBACK_DIRECTORY))


async def _try_socket(url: str, connection: asyncssh.SSHClientConnection, target: Target) -> None:
    """Open the engine's socket once over ``connection``, to say so if nothing is there."""
    import asyncssh

    try:
        _, writer = await connection.open_unix_connection(target.socket)
    except asyncssh.ChannelOpenError as exc:
        raise DockerUnavailableError(
            url, f"no engine answers at {target.socket} on {target.host} ({exc.reason})"
        ) from None
    except (OSError, asyncssh.Error) as exc:  # the connection broke off meanwhile
        raise DockerUnavailableError(url, f"the SSH connection broke off ({exc})") from None
    writer.close()
