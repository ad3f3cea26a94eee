"""A tunnel through the engine's API: ``tunnel=True`` for every engine not reached over SSH.

An engine over ``tcp://``, or one behind a socket whose published ports this
host cannot reach (Docker Desktop without its port forwarding, a VM), leaves
the registry's published port out of reach. The engine's API is always in
reach, and it can run a process in a container with the process's stdin and
stdout carried over the API's own connection::

    this host                       the engine's API                 the registry's network
    127.0.0.1:PORT ─ a connection ─> exec in the relay (hijacked) ─> nc REGISTRY 5000 ─> :5000
                   <───────────── bytes, both ways, until either end closes ─────────────┘

The relay is a container on the registry's own network, running a long
``sleep`` (``relay_image``: busybox, or any image with ``sh``, ``nc`` and
``sleep``). Each TCP connection accepted on ``127.0.0.1:PORT`` here becomes
one exec of ``nc REGISTRY 5000`` in it, started attached: what the
connection sends is the process's stdin, what the process writes to stdout
is sent back, and busybox's ``nc`` copies its stdio to and from its TCP
connection to the registry. A shell starts it, after writing a line of its
own (``MARKER``): an exec that cannot run (no ``nc`` in the image, say) is
answered by the engine on the process's stdout too, and the marker tells
the one from the other, so that the engine's words are never sent on as the
registry's.

An end of input either way is passed on as such: the client's end of
sending closes ``nc``'s stdin, and ``nc`` then ends its sending to the
registry (a half-close) while it goes on reading; the registry's close ends
``nc``, and with it the connection here. Over an engine reached with TLS,
the connection to the engine cannot be half-closed: a client's end of
sending then closes the whole connection (HTTP clients close whole
connections).

Why this way:

- ctlptl does the same for remote engines with two processes per
  connection: a ``socat`` listening here that runs ``docker exec -i HELPER
  socat STDIO TCP:localhost:PORT`` for each one, into a helper container on
  the engine's host network, which reaches the published port. Here the
  exec is made in-process over the client the library already holds (no
  docker CLI, no socat on this host), and the relay sits on the registry's
  network: it reaches the registry at its address there, through no
  published port, on engines whose host network is not this host's (a VM),
  with no host networking at all (rootless engines).
- One container per connection would cost a create and a start each (about
  400 ms on Docker 20.10, against about 60 ms for an exec); one process
  attached for every connection would need a multiplexer in the container,
  where busybox has none; and publishing the relay's own port is what
  cannot be reached in the first place.

The cost (``benchmarks/tunnel.py``, figures in docs/engines.md): the relay
container's create and start during the bring-up, beside the registry's
(after it, on Docker before 29), and a connection per readiness poll: 0.2
to 0.4 s more; then two requests and a process start for each connection,
about 60 ms on Docker 20.10 and 29, 170 ms on Podman 4.3. HTTP clients keep
their connections open, so a push pays it once per connection, not per
request. Bytes go through the engine's copies of the process's stdio and
through busybox's ``nc``, which reads and writes 1 KiB at a time: about 30
MB/s up and 60-70 MB/s down on Docker, against 250 and 400-500 MB/s through
a published port. crane's pushes never go through the tunnel (crane runs on
the registry's network); the native pusher's do.

Every connection, and the listener, belong to the task that serves them:
cancelling it (the block's exit, on every way out) closes the listener and
every connection at once, and the teardown then removes the relay
container, which ends the processes still running there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import anyio.abc
from anyio.abc import SocketAttribute

from ._concurrency import race
from ._engine import Attached, ContainerSpec, Engine
from ._errors import EphemeralRegistryError
from ._session import Session

logger = logging.getLogger("ephemeral_registry")

ROLE = "relay"
"""The relay container's ``ephemeral-registry.role`` label."""
SLEEP = "2147483647"
"""Seconds the relay sleeps: until the teardown removes it (68 years)."""
MARKER = b"relaying\n"
"""What the relay's shell writes before it becomes ``nc``: the process did start."""
RELAY_SCRIPT = 'echo relaying && exec nc "$0" "$1"'
LISTEN_HOST = "127.0.0.1"
MAX_PROBLEM = 500
"""The most of a relay's own complaint kept for an error message, in characters."""


def relay_spec(session: Session, image: str) -> ContainerSpec:
    """The relay container of ``session``'s tunnel: on the registry's network, asleep."""
    return ContainerSpec(
        name=f"{session.name}-relay",
        image=image,
        labels=session.labels(ROLE),
        network=session.name,
        command=("sleep", SLEEP),
    )


class ApiTunnel:
    """Connections to ``127.0.0.1:PORT`` here, each relayed to ``host:port`` on the
    registry's network by an ``nc`` run in the relay container through the engine's API."""

    def __init__(self, engine: Engine, relay_id: str, host: str, port: int) -> None:
        self._engine = engine
        self._relay_id = relay_id
        self._command = ("sh", "-c", RELAY_SCRIPT, host, str(port))
        self._target = f"{host}:{port}"
        self.last_problem = ""
        """What went wrong with the last connection that failed, for an error message."""

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen on a free port of this host's loopback, tell it by ``task_status``, then
        relay each connection, until cancelled. Never raises for one connection's failure.

        Cancellation: the listener and every connection are closed, the
        processes' connections to the engine with them; the cancellation
        propagates.
        """
        listener = await anyio.create_tcp_listener(local_host=LISTEN_HOST, local_port=0)
        async with listener, anyio.create_task_group() as connections:
            port = listener.extra(SocketAttribute.local_port)
            logger.debug("tunnel: %s:%d -> %s through the engine's API", LISTEN_HOST, port, self)
            task_status.started(port)
            await listener.serve(self._relay, connections)

    def __str__(self) -> str:
        return f"nc {self._target} in {self._relay_id[:12]}"

    async def _relay(self, client: anyio.abc.SocketStream) -> None:
        """Relay one connection, until either end closes it or it breaks; log a failure."""
        problems = bytearray()
        async with client:
            try:
                async with self._engine.attached(self._relay_id, self._command) as far:
                    await race(
                        lambda: _upstream(client, far), lambda: _downstream(far, client, problems)
                    )
            except anyio.BrokenResourceError as exc:  # the client's doing: nothing to keep
                logger.debug("tunnel: %s", exc)
            except EphemeralRegistryError as exc:
                problems[:0] = f"{exc}\n".encode()
            except Exception as exc:  # one connection's failure must not end the others
                logger.warning("tunnel: a connection through %s failed: %r", self, exc)
                problems[:0] = f"{exc!r}\n".encode()
        if problems:
            said = problems.decode(errors="replace").strip()[:MAX_PROBLEM]
            self.last_problem = said
            logger.debug("tunnel: a connection through %s ended so: %s", self, said)


async def _upstream(client: anyio.abc.SocketStream, far: Attached) -> None:
    """What the client sends, to the process's stdin; then its end. Never returns: the
    connection lasts until the far end closes (see ``_downstream``)."""
    with _client_gone():
        async for data in client:
            await far.send(data)
    if not far.send_eof():
        return  # no half-close: the connection ends here (the far end reads its close)
    await anyio.sleep_forever()


async def _downstream(far: Attached, client: anyio.abc.SocketStream, problems: bytearray) -> None:
    """What the process writes to stdout after ``MARKER``, to the client, until it ends
    (``nc`` ends when the registry closes); then the client reads its end. Its stderr goes
    to ``problems``, and so does a stdout without the marker (the engine's own error),
    which ends the connection there and then."""
    heard = bytearray()  # the first bytes of stdout, until they are MARKER or are not
    relaying: bool | None = None
    while (written := await far.receive()) is not None:
        stream, data = written
        if stream == "stdout" and relaying is None:
            heard += data
            if len(heard) < len(MARKER) and MARKER.startswith(heard):
                continue
            relaying = heard.startswith(MARKER)
            if not relaying:  # the engine's words: the process never ran, and the engine
                problems += heard[:MAX_PROBLEM]  # waits for the end of its stdin to say more
                break
            data = bytes(heard[len(MARKER) :])
        if stream == "stdout" and relaying:
            if data:
                with _client_gone():
                    await client.send(data)
        elif len(problems) < MAX_PROBLEM:  # stderr
            problems += data
    with _client_gone():
        await client.send_eof()


@contextmanager
def _client_gone() -> Iterator[None]:
    """A client that reset its connection ends the relay as its close does."""
    try:
        yield
    except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
        raise anyio.BrokenResourceError(f"the client's connection broke off ({exc!r})") from exc
