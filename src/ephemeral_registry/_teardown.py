"""The teardown of one registry: everything its session created, removed on the way out.

On Docker 29 and Podman::

    remove the registry and crane containers (kill, with their volumes) ───┐
    disconnect them from the network ─> remove the network ────────────────┘
                                (the network retried once the containers are gone)

and on older Docker engines, where that overlap can deadlock the engine::

    remove the registry and crane containers ─> remove the network

Where a create failed without a clear answer (``created.uncertain``), the
session's resources are also looked for by label.
"""

from __future__ import annotations

import logging
import shutil

import anyio

from . import _labels
from ._engine import Engine
from ._errors import CleanupError, EphemeralRegistryError
from ._resources import remove
from ._session import Session
from ._sweep import live_sessions

logger = logging.getLogger("ephemeral_registry")


async def tear_down(engine: Engine, session: Session, *, timeout: float) -> CleanupError | None:
    """Remove everything the session created; return what went wrong, if anything.

    A kept session (``Registry.keep()``) is left in place, and logged.

    Cancellation: runs shielded from it, bounded by ``timeout``; a
    cancellation that arrives meanwhile is left for the caller's next
    checkpoint.
    """
    if session.kept:
        # Still "live" for this process's sweeps; a dead owner's once it exits.
        logger.warning(
            "%s: kept for debugging: %s; `ephemeral-registry prune` removes them once this"
            " process has ended",
            session.name,
            ", ".join(leftovers(session)),
        )
        if session.ca_directory is not None:
            logger.warning("%s: its CA certificate stays in %s", session.name, session.ca_directory)
        return None
    live_sessions.discard(session.session_id)
    if session.ca_directory is not None:  # a file of its own, a few hundred bytes: no thread
        shutil.rmtree(session.ca_directory, ignore_errors=True)
    problem: CleanupError | None = None
    with anyio.move_on_after(timeout, shield=True) as scope:
        try:
            await _remove(engine, session)
        except EphemeralRegistryError as exc:
            problem = CleanupError(leftovers(session), str(exc))
            problem.__cause__ = exc
    if scope.cancelled_caught:
        problem = CleanupError(leftovers(session), f"not done within cleanup_timeout={timeout:g} s")
    if problem is None:
        logger.debug("%s: removed", session.name)
    return problem


def leftovers(session: Session) -> tuple[str, ...]:
    """What remains of the session, for a message."""
    return session.created.describe() or (
        f"resources labelled {_labels.SESSION}={session.session_id}",
    )


async def _remove(engine: Engine, session: Session) -> None:
    created = session.created
    containers, networks = created.containers, created.networks
    if created.uncertain:
        label = f"{_labels.SESSION}={session.session_id}"
        found = [*await engine.list_containers(label), *await engine.list_networks(label)]
        containers = sorted({*containers, *(r.id for r in found if r.kind == "container")})
        networks = sorted({*networks, *(r.id for r in found if r.kind == "network")})
    # Overlapping removals only where the engine is safe with them.
    identity = engine.known_identity
    overlap = identity is not None and identity.removes_concurrently
    await remove(engine, containers, networks, overlap=overlap, removed=created.forget)
