"""The watch on a running registry's container: its exit, and its own errors in its log.

Once the bring-up (``_bring_up``) has the registry answering, ``Watch.run``
waits for its container to exit (killed, out of memory), so that pushes
under way end at once with a ``PushError`` that says so (``exited``,
``exit_now``). A push that fails gets the registry's own last error lines
added (``with_registry_errors``): a registry that fails an upload (a full
disk, say) often just closes the connection, and its log says why.

Cancellation: ``run`` is the block's task, cancelled when it exits; the
others are a push's, and stop where they are.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable

from ._concurrency import Outcome
from ._engine import Engine
from ._errors import EphemeralRegistryError, PushError
from ._running import Running
from ._session import Session

logger = logging.getLogger("ephemeral_registry")

LOG_LINES = 50
"""How many of the registry's last log lines are searched for its own errors."""
REGISTRY_ERROR_LINES = 5
"""How many of the registry's own error lines a PushError carries."""


class Watch:
    """Watches one registry's container once it is up, for the pushes."""

    def __init__(
        self, engine: Engine, session: Session, running: Callable[[], Awaitable[Running]]
    ) -> None:
        self._engine = engine
        self._session = session
        self._running = running
        self.exited: Outcome[str] = Outcome()
        """Set, to what happened, once the registry's container has exited (killed, say)."""

    async def exit_now(self) -> str | None:
        """What happened to the registry's container, if it has exited (asked at once)."""
        if self.exited.done:
            return await self.exited.get()
        if self._session.created.registry is None:
            return None
        try:
            state = await self._engine.state(self._session.created.registry)
        except EphemeralRegistryError:
            return None
        if state.exit_code is None:
            return None
        how = " (out of memory)" if state.oom_killed else ""
        return (
            f"the registry container {self._session.name} exited with code {state.exit_code}{how}"
        )

    async def run(self) -> None:
        """Once the registry is up, wait for its container to exit; tell the pushes."""
        try:
            await self._running()
        except Exception:
            return  # no registry to watch
        container_id = self._session.created.registry
        if container_id is None:
            return
        try:
            await self._engine.wait(container_id)
        except EphemeralRegistryError as exc:  # removed meanwhile, say: nothing to tell
            logger.debug("%s: watching the registry container: %s", self._session.name, exc)
            return
        exited = await self.exit_now()
        if exited is not None:
            logger.warning("%s: %s", self._session.name, exited)
            self.exited.set_value(exited)

    async def with_registry_errors(self, failure: PushError) -> PushError:
        """The failure with the registry's own last error lines added (a full disk, say):
        a registry that fails an upload often just closes the connection."""
        lines: tuple[str, ...] = ()
        if self._session.created.registry is not None:
            with contextlib.suppress(EphemeralRegistryError):
                logged = await self._engine.tail_logs(self._session.created.registry, LOG_LINES)
                errors = [f"registry: {error}" for error in map(_server_error, logged) if error]
                lines = tuple(errors[-REGISTRY_ERROR_LINES:])
        if not lines:
            return failure
        output = failure.output + lines
        return PushError(failure.ref, failure.reason, exit_code=failure.exit_code, output=output)


_LOGGED_MESSAGE = re.compile(r'\bmsg="((?:[^"\\]|\\.)*)"')


def _server_error(line: str) -> str | None:
    """The message of a registry log line that reports an error of its own, else None.

    Registry 2 and 3 log with logrus (``level=error msg="..."``); answers to a
    client's mistake (4xx, a HEAD for a blob it lacks, say) are left out.
    """
    if "level=error" not in line or "http.response.status=4" in line:
        return None
    found = _LOGGED_MESSAGE.search(line)
    return found.group(1).replace('\\"', '"') if found else line
